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
  static_assert(!kIsPair<T>, "pair transforms read two words: polar_part");
  F y = x;
  if constexpr (T == Transform::kNormal) {
    const F t = fma(F(p.erf_scale), x, F(p.erf_shift));
    y = erfinv(min(max(t, F(-kSignedUnitMax)), F(kSignedUnitMax)));
  }
  return min(max(fma(F(p.scale), y, F(p.shift)), F(p.lo)), F(p.hi));
}

// ---------------------------------------------------------------------------
// Pair transforms (complex outputs). Scalar only (float): the SIMD kernels call
// these per pair on words they spill to memory; the operations and their order
// are the same everywhere, so the bits are too.
// ---------------------------------------------------------------------------

struct SinCos {
  float sin;
  float cos;
};

// sin(pi x) and cos(pi x) for |x| < 1, from exact reductions and Taylor series.
// |x| folds to y = min(|x|, 1 - |x|) in [0, 1/2] and then to z = min(y, 1/2 - y)
// in [0, 1/4]; both subtractions are exact (Sterbenz), so no error enters before
// the polynomials. On [0, 1/4] (pi z <= 0.786) the series below end at pi^9 z^9 /
// 9! and pi^10 z^10 / 10!; the next terms are < 3e-9 relative, under 2^-27.
FASTINIT_HOST_DEVICE FASTINIT_INLINE SinCos sincospi(float x) {
  const float a = x < 0.0f ? -x : x;
  const bool flip = a > 0.5f;  // cos(pi a) = -cos(pi (1 - a)), sin unchanged
  const float y = flip ? 1.0f - a : a;
  const bool turn = y > 0.25f;  // sin(pi y) = cos(pi (1/2 - y)) and vice versa
  const float z = turn ? 0.5f - y : y;
  const float z2 = z * z;
  // Coefficients (-1)^k pi^(2k+1) / (2k+1)! and (-1)^k pi^(2k) / (2k)!, as float32.
  float s = 0.0821458866f;  // pi^9 / 9!
  s = fma(s, z2, -0.599264529f);
  s = fma(s, z2, 2.55016404f);
  s = fma(s, z2, -5.16771278f);
  s = fma(s, z2, 3.14159265f);
  s = s * z;
  float c = -0.0258068914f;  // -pi^10 / 10!
  c = fma(c, z2, 0.235330630f);
  c = fma(c, z2, -1.33526277f);
  c = fma(c, z2, 4.05871213f);
  c = fma(c, z2, -4.93480220f);
  c = fma(c, z2, 1.0f);
  const float sin_a = turn ? c : s;
  const float cos_y = turn ? s : c;
  return SinCos{x < 0.0f ? -sin_a : sin_a, flip ? -cos_y : cos_y};
}

// -log(1 - t) for 0 < t <= 1/2, accurate near t = 0 too: with u = 1 - t and
// d = u - 1 (exact), log1p(-t) = log(u) * (-t / d) corrects the rounding of u
// (D. Goldberg, "What every computer scientist should know about floating-point
// arithmetic", 1991, Theorem 4); u == 1 leaves -log1p(-t) = t.
FASTINIT_HOST_DEVICE FASTINIT_INLINE float neg_log1p_neg(float t) {
  const float u = 1.0f - t;
  const float d = u - 1.0f;
  if (d == 0.0f) return t;
  return log_positive(u) * div(t, d);
}

// The (real, imaginary) pair of a pair transform from its two words.
template <Transform T>
FASTINIT_HOST_DEVICE FASTINIT_INLINE void polar(const Params& p, std::uint32_t radius_word,
                                                std::uint32_t angle_word, float& re, float& im) {
  static_assert(kIsPair<T>, "polar serves the pair transforms");
  const float b = signed_unit(radius_word);
  float r2;
  if constexpr (T == Transform::kPolarDisk) {
    r2 = b + 1.0f;  // 2u for u = (b + 1) / 2 uniform on (0, 1)
  } else {
    // -log(1 - c u), u = (b + 1) / 2, from h = c/2 and g = 1 - c/2: where 1 - c u is
    // below 1/2, itself (one fma, so relative accuracy down to its smallest value);
    // above, through c u (one fma) and log1p, accurate where the log is small.
    const float rest = fma(-p.erf_scale, b, p.erf_shift);  // 1 - c u = g - h b
    r2 = rest < 0.5f ? -log_positive(rest) : neg_log1p_neg(fma(p.erf_scale, b, p.erf_scale));
  }
  const float rho = p.scale * sqrt(r2);
  const SinCos angle = sincospi(signed_unit(angle_word));
  re = rho * angle.cos;
  im = rho * angle.sin;
}

// Element `imaginary ? 2m + 1 : 2m` of a pair transform, from words 2m and 2m + 1.
template <Transform T>
FASTINIT_HOST_DEVICE FASTINIT_INLINE float polar_part(const Params& p, std::uint32_t radius_word,
                                                      std::uint32_t angle_word, bool imaginary) {
  float re;
  float im;
  polar<T>(p, radius_word, angle_word, re, im);
  return imaginary ? im : re;
}

}  // namespace fastinit
