// fastinit/transforms.h — pure functions from x = signed_unit(word) to a sample.
//
// Guarantee: every function here uses only +, -, *, fastinit::fma, div, sqrt,
// comparisons, min/max and exact bit manipulation, each correctly rounded in
// float32, so the scalar reference, SIMD kernels and CUDA produce identical bits.
// No libm: log and erfinv are our own. One word gives one output (inverse-CDF
// sampling, no rejection), so element i depends on word i only.
//
// The functions are templates over the float type F. The scalar reference uses
// F = float; a SIMD target supplies a vector type with the same operators and
// the free functions of config.h (fma, sqrt, div, min, max, select, any,
// bits_of, float_from_bits, to_float). Branches over lanes are written as
// select(); `any` only skips work whose result no lane would keep.
#pragma once

#include "fastinit/convert.h"
#include "fastinit/params.h"

namespace fastinit {

// ln 2 split so that e * kLn2Hi is exact for |e| < 2^8 (8 trailing zero bits).
constexpr float kLn2Hi = 0.693145751953125f;
constexpr float kLn2Lo = 1.428606765330187e-06f;

// Natural log of a positive, normal, finite float.
// x = 2^e * m with m in [sqrt(1/2), sqrt(2)); log m = 2 atanh(s), s = (m-1)/(m+1),
// |s| < 0.1716, summed to s^9 (truncation error < 2^-28 relative).
template <class F>
FASTINIT_HOST_DEVICE FASTINIT_INLINE F log_positive(F x) {
  // Adding 1 - sqrt(1/2) in the mantissa field carries into the exponent
  // exactly when the mantissa is >= sqrt(2), which centres m around 1.
  constexpr std::uint32_t kSqrtHalfBits = 0x3F3504F3u;  // float32(sqrt(1/2))
  const auto shifted = bits_of(x) + (0x3F800000u - kSqrtHalfBits);
  const F e = to_float(as_signed(shifted >> 23) - 127);
  const F m = float_from_bits((shifted & 0x007FFFFFu) + kSqrtHalfBits);
  const F f = m - 1.0f;  // exact (Sterbenz)
  const F s = div(f, f + 2.0f);
  const F z = s * s;
  F p = fma(z, F(2.0f / 9.0f), F(2.0f / 7.0f));
  p = fma(z, p, F(2.0f / 5.0f));
  p = fma(z, p, F(2.0f / 3.0f));
  const F log_m = fma(s * z, p, s + s);
  return fma(e, F(kLn2Hi), fma(e, F(kLn2Lo), log_m));
}

// Inverse error function for |t| <= 1 - 2^-24.
// M. Giles, "Approximating the erfinv function", GPU Computing Gems Jade
// Edition (2011): the single-precision coefficients, with w = -log(1 - t^2)
// formed by one fma. Relative error about 1e-7 over our whole input grid.
template <class F>
FASTINIT_HOST_DEVICE FASTINIT_INLINE F erfinv(F t) {
  const F w = -log_positive(fma(-t, t, F(1.0f)));
  const F v = w - 2.5f;
  F p = F(2.81022636e-08f);
  p = fma(p, v, F(3.43273939e-07f));
  p = fma(p, v, F(-3.5233877e-06f));
  p = fma(p, v, F(-4.39150654e-06f));
  p = fma(p, v, F(0.00021858087f));
  p = fma(p, v, F(-0.00125372503f));
  p = fma(p, v, F(-0.00417768164f));
  p = fma(p, v, F(0.246640727f));
  p = fma(p, v, F(1.50140941f));
  const auto in_tail = w >= 5.0f;  // |t| > 0.99662: only the untruncated normal
  if (any(in_tail)) {
    const F r = sqrt(w) - 3.0f;
    F q = F(-0.000200214257f);
    q = fma(q, r, F(0.000100950558f));
    q = fma(q, r, F(0.00134934322f));
    q = fma(q, r, F(-0.00367342844f));
    q = fma(q, r, F(0.00573950773f));
    q = fma(q, r, F(-0.0076224613f));
    q = fma(q, r, F(0.00943887047f));
    q = fma(q, r, F(1.00167406f));
    q = fma(q, r, F(2.83297682f));
    p = select(in_tail, q, p);
  }
  return p * t;
}

// The sample for x = signed_unit(word); see Params for the formula.
template <Transform T, class F>
FASTINIT_HOST_DEVICE FASTINIT_INLINE F transform(const Params& p, F x) {
  F y = x;
  if constexpr (T == Transform::kNormal) {
    const F t = fma(F(p.erf_scale), x, F(p.erf_shift));
    y = erfinv(min(max(t, F(-kSignedUnitMax)), F(kSignedUnitMax)));
  }
  return min(max(fma(F(p.scale), y, F(p.shift)), F(p.lo)), F(p.hi));
}

}  // namespace fastinit
