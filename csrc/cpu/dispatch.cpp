#include <algorithm>
#include <cstdlib>
#include <stdexcept>

#include "core/fill.h"
#include "cpu/kernel.h"
#include "fastinit/stream.h"

namespace fastinit {
namespace cpu {
namespace {

struct Target {
  const char* name;
  RangeFill fill;
  BlockWords blocks;
  bool (*supported)();
};

void philox_blocks_reference(std::uint32_t* dst, std::uint64_t seed, std::uint64_t stream,
                             std::uint64_t first_block, std::uint64_t blocks) {
  const Key2x32 key = key_from_seed(seed);
  for (std::uint64_t b = 0; b < blocks; ++b) {
    const Counter4x32 words = stream_block(key, stream, first_block + b);
    for (unsigned j = 0; j < 4; ++j) dst[4 * b + j] = words.v[j];
  }
}

bool always() { return true; }

#if defined(FASTINIT_HAVE_X86_TARGETS)
bool has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("f16c");
}
bool has_avx512() {
  __builtin_cpu_init();
  return has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
}
#endif

// Lowest first; each entry's instruction set includes the previous one's.
const std::vector<Target>& targets() {
  static const std::vector<Target> all = {
      {"scalar", fill_range_reference, philox_blocks_reference, always},
#if defined(FASTINIT_HAVE_X86_TARGETS)
      {"avx2", avx2::fill_range, avx2::philox_blocks, has_avx2},
      {"avx512", avx512::fill_range, avx512::philox_blocks, has_avx512},
#endif
  };
  return all;
}

std::string choose_target() {
  const auto supported = supported_targets();
  const char* forced = std::getenv("FASTINIT_CPU_TARGET");
  if (forced == nullptr || *forced == '\0') return supported.back();
  const auto compiled = compiled_targets();
  if (std::find(compiled.begin(), compiled.end(), forced) == compiled.end()) {
    std::string names;
    for (const auto& name : compiled) names += (names.empty() ? "" : ", ") + name;
    throw std::invalid_argument(std::string("FASTINIT_CPU_TARGET=") + forced +
                                " is not a target of this build (" + names + ")");
  }
  // A forced target may only lower the choice: never run what the CPU lacks.
  if (std::find(supported.begin(), supported.end(), forced) == supported.end()) {
    return supported.back();
  }
  return forced;
}

}  // namespace

std::vector<std::string> compiled_targets() {
  std::vector<std::string> names;
  for (const auto& t : targets()) names.emplace_back(t.name);
  return names;
}

std::vector<std::string> supported_targets() {
  std::vector<std::string> names;
  for (const auto& t : targets()) {
    if (t.supported()) names.emplace_back(t.name);
  }
  return names;
}

const std::string& active_target() {
  static const std::string chosen = choose_target();
  return chosen;
}

const Target& supported_target(const std::string& name) {
  for (const auto& t : targets()) {
    if (name == t.name) {
      if (!t.supported())
        throw std::invalid_argument("CPU target " + name + " is not supported here");
      return t;
    }
  }
  throw std::invalid_argument("unknown CPU target " + name);
}

RangeFill range_fill(const std::string& target) { return supported_target(target).fill; }

BlockWords block_words(const std::string& target) { return supported_target(target).blocks; }

}  // namespace cpu
}  // namespace fastinit
