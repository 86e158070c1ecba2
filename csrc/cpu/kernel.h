// cpu/kernel.h — the per-target range fills and the choice among them.
//
// Every function here fills elements first .. first + count - 1 of a stream
// exactly as fill_range_reference (core/fill.h) does, bit for bit; they differ
// only in speed. The target is chosen once per process: the best the CPU
// supports, lowered by FASTINIT_CPU_TARGET=scalar|avx2|avx512 if set.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fastinit/params.h"

namespace fastinit {
namespace cpu {

using RangeFill = void (*)(void* dst, OutputType type, const Params& params, std::uint64_t seed,
                           std::uint64_t stream, std::uint64_t first, std::uint64_t count);

#define FASTINIT_DECLARE_TARGET(name)                                                   \
  namespace name {                                                                      \
  void fill_range(void* dst, OutputType type, const Params& params, std::uint64_t seed, \
                  std::uint64_t stream, std::uint64_t first, std::uint64_t count);      \
  void philox_blocks(std::uint32_t* dst, std::uint64_t seed, std::uint64_t stream,      \
                     std::uint64_t first_block, std::uint64_t blocks);                  \
  }
FASTINIT_DECLARE_TARGET(avx2)
FASTINIT_DECLARE_TARGET(avx512)
#undef FASTINIT_DECLARE_TARGET

// The SIMD Philox alone: the four words of blocks first_block .. + blocks - 1 (any
// 64-bit block numbers, wrapping mod 2^64), for the known-answer tests.
using BlockWords = void (*)(std::uint32_t* dst, std::uint64_t seed, std::uint64_t stream,
                            std::uint64_t first_block, std::uint64_t blocks);
BlockWords block_words(const std::string& target);

// Targets compiled into this build, lowest first ("scalar" always).
std::vector<std::string> compiled_targets();

// Compiled targets this CPU can run, lowest first.
std::vector<std::string> supported_targets();

// The target every fill uses: the best supported one, or FASTINIT_CPU_TARGET if it
// names a lower one. Decided on first use; an unknown name throws.
const std::string& active_target();

// The fill of a named target; throws std::invalid_argument if not supported here.
RangeFill range_fill(const std::string& target);

}  // namespace cpu
}  // namespace fastinit
