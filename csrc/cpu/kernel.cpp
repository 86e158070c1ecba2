// cpu/kernel.cpp — the SIMD fill, written once and compiled per instruction set.
//
// CMake builds this file once per target with FASTINIT_CPU_AVX2 or
// FASTINIT_CPU_AVX512 and the matching -m flags; each copy defines
// fastinit::cpu::<target>::fill_range. It computes kLanes Philox blocks side by
// side (lane l = block b + l), transposes the words to element order, and runs
// the shared transforms.h on vectors: the same operations in the same order as
// the scalar reference, so the same bits. A group that the range only partly
// covers is computed whole into a stack buffer and the covered part copied out.
#include "cpu/kernel.h"

#include <cstring>
#include <stdexcept>

#include "cpu/simd.h"
#include "fastinit/convert.h"
#include "fastinit/dispatch.h"
#include "fastinit/philox.h"
#include "fastinit/round.h"
#include "fastinit/stream.h"
#include "fastinit/transforms.h"

namespace fastinit {
namespace cpu {
namespace FASTINIT_CPU_TARGET {
namespace {

// Independent Philox vectors per group (kPhiloxWays, per target): the ten dependent
// rounds of one vector leave the multipliers idle; several in flight keep them busy.
constexpr unsigned kWays = kPhiloxWays;
constexpr unsigned kGroupBlocks = kWays * kLanes;
constexpr unsigned kGroup = 4 * kGroupBlocks;  // elements per group
constexpr unsigned kGroupVectors = 4 * kWays;  // vectors of words per group

// Round keys are the same in every lane: computed once per fill.
struct Stream {
  std::uint32_t key0[kPhiloxRounds];
  std::uint32_t key1[kPhiloxRounds];
  std::uint32_t stream_lo;
  std::uint32_t stream_hi;

  Stream(std::uint64_t seed, std::uint64_t stream) {
    Key2x32 key = key_from_seed(seed);
    for (unsigned r = 0; r < kPhiloxRounds; ++r) {
      key0[r] = key.v[0];
      key1[r] = key.v[1];
      key = philox_bump_key(key);
    }
    stream_lo = static_cast<std::uint32_t>(stream);
    stream_hi = static_cast<std::uint32_t>(stream >> 32);
  }
};

// The words of elements 4*block .. 4*block + kGroup - 1, in element order.
FASTINIT_INLINE void group_words(const Stream& s, std::uint64_t block, U words[kGroupVectors]) {
  alignas(64) std::uint32_t lo[kGroupBlocks];
  alignas(64) std::uint32_t hi[kGroupBlocks];
  for (unsigned l = 0; l < kGroupBlocks; ++l) {  // the block number may carry into its high word
    lo[l] = static_cast<std::uint32_t>(block + l);
    hi[l] = static_cast<std::uint32_t>((block + l) >> 32);
  }
  U c[kWays][4];
  for (unsigned w = 0; w < kWays; ++w) {
    c[w][0] = load(lo + w * kLanes);
    c[w][1] = load(hi + w * kLanes);
    c[w][2] = U(s.stream_lo);
    c[w][3] = U(s.stream_hi);
  }
  for (unsigned r = 0; r < kPhiloxRounds; ++r) {
    for (unsigned w = 0; w < kWays; ++w) philox_round(c[w], U(s.key0[r]), U(s.key1[r]));
  }
  for (unsigned w = 0; w < kWays; ++w) to_element_order(c[w], words + 4 * w);
}

template <Transform T>
FASTINIT_INLINE F sample(const Params& p, U word) {
  return transform<T>(p, signed_unit(word));
}

// One group of samples (or raw words) into consecutive outputs; store() has an
// overload per output type, rounding float32 lanes as round.h does per value.
// A pair transform (complex values) runs the scalar polar() on each pair of words,
// spilled to memory: a group starts on a block boundary, so its pairs are
// elements (0, 1), (2, 3), ...
template <Transform T, class Out>
FASTINIT_INLINE void emit(Out* out, const Params& p, const U w[kGroupVectors]) {
  if constexpr (kIsPair<T>) {
    alignas(64) std::uint32_t words[kGroup];
    for (unsigned k = 0; k < kGroupVectors; ++k) store(words + k * kLanes, w[k]);
    for (unsigned e = 0; e < kGroup; e += 2) {
      float re;
      float im;
      polar<T>(p, words[e], words[e + 1], re, im);
      ::fastinit::store(out + e, re);
      ::fastinit::store(out + e + 1, im);
    }
  } else {
    for (unsigned k = 0; k < kGroupVectors; ++k) store(out + k * kLanes, sample<T>(p, w[k]));
  }
}
template <Transform>
FASTINIT_INLINE void emit(std::uint32_t* out, const Params&, const U w[kGroupVectors]) {
  for (unsigned k = 0; k < kGroupVectors; ++k) store(out + k * kLanes, w[k]);
}

// Elements first .. first + count - 1, in groups that start on block boundaries.
template <Transform T, class Out>
void fill_groups(Out* dst, const Params& p, const Stream& s, std::uint64_t first,
                 std::uint64_t count) {
  std::uint64_t block = first >> 2;
  std::uint64_t skip = first & 3u;  // elements of the first group before `first`
  U words[kGroupVectors];
  while (count > 0) {
    group_words(s, block, words);
    if (skip == 0 && count >= kGroup) {
      emit<T>(dst, p, words);
      dst += kGroup;
      count -= kGroup;
    } else {
      alignas(64) Out buffer[kGroup];
      emit<T>(buffer, p, words);
      const std::uint64_t n = count < kGroup - skip ? count : kGroup - skip;
      std::memcpy(dst, buffer + skip, n * sizeof(Out));
      dst += n;
      count -= n;
      skip = 0;
    }
    block += kGroupBlocks;
  }
}

}  // namespace

void philox_blocks(std::uint32_t* dst, std::uint64_t seed, std::uint64_t stream,
                   std::uint64_t first_block, std::uint64_t blocks) {
  const Stream s(seed, stream);
  U words[kGroupVectors];
  for (std::uint64_t done = 0; done < blocks; done += kGroupBlocks) {
    group_words(s, first_block + done, words);
    alignas(64) std::uint32_t buffer[kGroup];
    for (unsigned k = 0; k < kGroupVectors; ++k) store(buffer + k * kLanes, words[k]);
    const std::uint64_t n = blocks - done < kGroupBlocks ? blocks - done : kGroupBlocks;
    std::memcpy(dst + 4 * done, buffer, 4 * n * sizeof(std::uint32_t));
  }
}

void fill_range(void* dst, OutputType type, const Params& params, std::uint64_t seed,
                std::uint64_t stream, std::uint64_t first, std::uint64_t count) {
  const Stream s(seed, stream);
  dispatch_fill(type, params.transform, [&](auto out, auto transform) {
    using Out = typename decltype(out)::type;
    fill_groups<decltype(transform)::value>(static_cast<Out*>(dst), params, s, first, count);
  });
}

}  // namespace FASTINIT_CPU_TARGET
}  // namespace cpu
}  // namespace fastinit
