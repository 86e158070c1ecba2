// fastinit/philox.h — the Philox4x32 bijection, exactly as Random123 defines it.
//
// Guarantee: philox4x32<R>(counter, key) equals Random123's philox4x32_R for
// every input; tests/data/kat/ holds Random123's known-answer vectors for
// R = 10 and R = 7, run against this code unchanged.
//
// Reference: J. K. Salmon, M. A. Moraes, R. O. Dror, D. E. Shaw, "Parallel
// random numbers: as easy as 1, 2, 3", SC11 (2011).
#pragma once

#include "fastinit/config.h"

namespace fastinit {

struct Counter4x32 {
  std::uint32_t v[4];
};

struct Key2x32 {
  std::uint32_t v[2];
};

// Round multipliers and Weyl key increments (Salmon et al., table 2; the
// increments are the golden ratio and sqrt(3) - 1 in 0.32 fixed point).
constexpr std::uint32_t kPhiloxM0 = 0xD2511F53u;
constexpr std::uint32_t kPhiloxM1 = 0xCD9E8D57u;
constexpr std::uint32_t kPhiloxW0 = 0x9E3779B9u;
constexpr std::uint32_t kPhiloxW1 = 0xBB67AE85u;

// The only platform-specific step: the 32x32 -> 64 bit product, split. Other word
// types (cpu/simd.h's vector lanes) supply their own mulhilo with this signature.
FASTINIT_HOST_DEVICE FASTINIT_INLINE std::uint32_t mulhilo(std::uint32_t a, std::uint32_t b,
                                                           std::uint32_t* hi) {
#if defined(__CUDA_ARCH__)
  *hi = __umulhi(a, b);
  return a * b;
#else
  const std::uint64_t p = static_cast<std::uint64_t>(a) * b;
  *hi = static_cast<std::uint32_t>(p >> 32);
  return static_cast<std::uint32_t>(p);
#endif
}

// One round in place, written once for every word type: std::uint32_t here and on
// CUDA, a vector of independent counters' words (one per lane) in the SIMD kernel.
// Word needs mulhilo(Word, std::uint32_t, Word*) and ^.
template <class Word>
FASTINIT_HOST_DEVICE FASTINIT_INLINE void philox_round(Word (&c)[4], Word k0, Word k1) {
  Word hi0, hi1;
  const Word lo0 = mulhilo(c[0], kPhiloxM0, &hi0);
  const Word lo1 = mulhilo(c[2], kPhiloxM1, &hi1);
  c[0] = hi1 ^ c[1] ^ k0;
  c[1] = lo1;
  c[2] = hi0 ^ c[3] ^ k1;
  c[3] = lo0;
}

FASTINIT_HOST_DEVICE FASTINIT_INLINE Counter4x32 philox_round(Counter4x32 c, Key2x32 k) {
  philox_round(c.v, k.v[0], k.v[1]);
  return c;
}

FASTINIT_HOST_DEVICE FASTINIT_INLINE Key2x32 philox_bump_key(Key2x32 k) {
  return Key2x32{{k.v[0] + kPhiloxW0, k.v[1] + kPhiloxW1}};
}

// R rounds; the first uses the key as given, each later one the key bumped once more.
template <unsigned R>
FASTINIT_HOST_DEVICE FASTINIT_INLINE Counter4x32 philox4x32(Counter4x32 c, Key2x32 k) {
  static_assert(R >= 1 && R <= 16, "Random123 defines Philox4x32 for 1..16 rounds");
  c = philox_round(c, k);
#if defined(__CUDACC__)
#pragma unroll
#endif
  for (unsigned r = 1; r < R; ++r) {
    k = philox_bump_key(k);
    c = philox_round(c, k);
  }
  return c;
}

}  // namespace fastinit
