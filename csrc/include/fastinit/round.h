// fastinit/round.h — a float32 sample rounded once into the output type.
//
// Guarantee: float16 and bfloat16 results are the float32 value rounded to
// nearest, ties to even, with float16 subnormals kept (no flush to zero) and
// overflow to infinity as IEEE prescribes; float64 is the float32 value widened
// exactly. Pure integer arithmetic (plus one exact float add), so hosts without
// F16C and CUDA give the same bits. Inputs are finite: the transforms never
// produce NaN.
#pragma once

#include "fastinit/config.h"

namespace fastinit {

FASTINIT_HOST_DEVICE FASTINIT_INLINE std::uint16_t round_to_bfloat16(float x) {
  const std::uint32_t u = bits_of(x);
  const std::uint32_t tie_to_even = 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>((u + tie_to_even) >> 16);
}

FASTINIT_HOST_DEVICE FASTINIT_INLINE std::uint16_t round_to_float16(float x) {
  const std::uint32_t u = bits_of(x);
  const std::uint32_t sign = (u >> 16) & 0x8000u;
  const std::uint32_t magnitude = u & 0x7FFFFFFFu;
  std::uint32_t h;
  if (magnitude < 0x38800000u) {
    // Below 2^-14, the float16 subnormal range, whose spacing is 2^-24. Adding
    // 0.5 puts the value where float32 spacing is also 2^-24, so the float add
    // itself rounds to nearest even; the low bits are then the float16 code
    // (0x400 when it rounds up to the smallest normal, which is also right).
    const float shifted = float_from_bits(magnitude) + 0.5f;
    h = bits_of(shifted) - 0x3F000000u;
  } else {
    // Rebias the exponent (127 -> 15) and drop 13 mantissa bits with RNE; a
    // carry moves into the exponent, and past 65504 into infinity (0x7C00).
    const std::uint32_t tie_to_even = 0x0FFFu + ((magnitude >> 13) & 1u);
    h = (magnitude - (112u << 23) + tie_to_even) >> 13;
    h = h < 0x7C00u ? h : 0x7C00u;
  }
  return static_cast<std::uint16_t>(sign | h);
}

// Output element types and how one float32 sample becomes one of them.
struct BFloat16Bits {
  std::uint16_t bits;
};
struct Float16Bits {
  std::uint16_t bits;
};

FASTINIT_HOST_DEVICE FASTINIT_INLINE void store(float* dst, float x) { *dst = x; }
FASTINIT_HOST_DEVICE FASTINIT_INLINE void store(double* dst, float x) {
  *dst = static_cast<double>(x);
}
FASTINIT_HOST_DEVICE FASTINIT_INLINE void store(Float16Bits* dst, float x) {
  dst->bits = round_to_float16(x);
}
FASTINIT_HOST_DEVICE FASTINIT_INLINE void store(BFloat16Bits* dst, float x) {
  dst->bits = round_to_bfloat16(x);
}

}  // namespace fastinit
