// fastinit/stream.h — THE stream: which Philox output word element i receives.
//
// Guarantee (docs/stream.md is the normative text):
//   key       = (seed mod 2^32, seed >> 32)
//   counter b = (b mod 2^32, b >> 32, stream mod 2^32, stream >> 32)
//   element i = word (i mod 4) of philox4x32<10>(counter i div 4, key)
// The mapping depends on nothing else: not on threads, vector width, chunking,
// launch geometry or device. Every backend addresses elements through this file.
#pragma once

#include "fastinit/philox.h"

namespace fastinit {

constexpr unsigned kPhiloxRounds = 10;

FASTINIT_HOST_DEVICE FASTINIT_INLINE Key2x32 key_from_seed(std::uint64_t seed) {
  return Key2x32{{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)}};
}

FASTINIT_HOST_DEVICE FASTINIT_INLINE Counter4x32 block_counter(std::uint64_t block,
                                                               std::uint64_t stream) {
  return Counter4x32{{static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32),
                      static_cast<std::uint32_t>(stream),
                      static_cast<std::uint32_t>(stream >> 32)}};
}

// The four words of block `block`: elements 4*block .. 4*block + 3.
FASTINIT_HOST_DEVICE FASTINIT_INLINE Counter4x32 stream_block(Key2x32 key, std::uint64_t stream,
                                                              std::uint64_t block) {
  return philox4x32<kPhiloxRounds>(block_counter(block, stream), key);
}

}  // namespace fastinit
