// fastinit/convert.h — one 32-bit word to one float in the open interval (-1, 1).
//
// Guarantee: signed_unit(w) = (2*k + 1 - 2^24) * 2^-24 with k = w >> 8, the top
// 24 bits of the word. Every step is exact in float32, so the map is the same on
// every platform. Its 2^24 values are the odd multiples of 2^-24 in (-1, 1):
//   min = -1 + 2^-24 (words 0x00000000 .. 0x000000FF)
//   max =  1 - 2^-24 (words 0xFFFFFF00 .. 0xFFFFFFFF)
// The set is symmetric about 0 (k and 2^24 - 1 - k give x and -x) and never
// contains 0, -1 or 1, so erfinv and log downstream stay finite.
//
// Written as a template over the word type so a SIMD vector of words (with its
// own shift, or, subtraction and to_float) instantiates the same code.
#pragma once

#include "fastinit/config.h"

namespace fastinit {

constexpr float kTwoPowMinus24 = 5.9604644775390625e-08f;  // 2^-24, exact
constexpr float kSignedUnitMax = 1.0f - kTwoPowMinus24;    // largest value, exact

FASTINIT_HOST_DEVICE FASTINIT_INLINE std::int32_t as_signed(std::uint32_t u) {
  return static_cast<std::int32_t>(u);
}

template <class Word>
FASTINIT_HOST_DEVICE FASTINIT_INLINE auto signed_unit(Word w) {
  // (w >> 7) | 1 == 2*(w >> 8) + 1 < 2^25: fits int32, converts exactly.
  const auto odd = as_signed((w >> 7) | 1u) - (1 << 24);
  return to_float(odd) * kTwoPowMinus24;
}

}  // namespace fastinit
