#include "core/params.h"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace fastinit {
namespace {

constexpr double kSqrt2 = 1.4142135623730950488;
constexpr double kTwoOverSqrtPi = 1.1283791670955125739;
// ln 2 split as in fdlibm: k * kLn2Hi is exact for |k| < 2^20.
constexpr double kLn2Hi = 6.93147180369123816490e-01;
constexpr double kLn2Lo = 1.90821492927058770002e-10;
constexpr double kInvLn2 = 1.44269504088896338700e+00;
// |erfinv(t)| for the largest |t| the transform admits, 1 - 2^-24, rounded up.
constexpr double kErfinvMax = 3.8326;

// e^y for -40 <= y <= 0: y = k ln2 + r, |r| <= ln2 / 2, Taylor series of e^r
// to r^22 (error < 1e-17), then an exact scaling by 2^k.
double exp_nonpositive(double y) {
  const double k = std::floor(y * kInvLn2 + 0.5);
  const double r = (y - k * kLn2Hi) - k * kLn2Lo;
  double sum = 1.0;
  for (int j = 22; j >= 1; --j) sum = 1.0 + r * sum / j;
  return std::ldexp(sum, static_cast<int>(k));
}

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument(what);
}

bool is_finite(double x) { return std::isfinite(x); }

// The float32 nearest to d among those strictly above (inward from) a lower bound.
float float_above(double d) {
  float f = static_cast<float>(d);
  if (static_cast<double>(f) <= d) f = std::nextafter(f, std::numeric_limits<float>::infinity());
  return f;
}

float float_below(double d) {
  float f = static_cast<float>(d);
  if (static_cast<double>(f) >= d) f = std::nextafter(f, -std::numeric_limits<float>::infinity());
  return f;
}

// Clamp limits strictly inside (low, high), so no sample equals an endpoint;
// an interval too narrow for that keeps the float32 values nearest its middle.
void set_limits(Params& p, double low, double high) {
  p.lo = std::isinf(low) ? static_cast<float>(low) : float_above(low);
  p.hi = std::isinf(high) ? static_cast<float>(high) : float_below(high);
  if (p.lo > p.hi) p.lo = p.hi = static_cast<float>(low + (high - low) / 2);
}

}  // namespace

double erf_double(double x) {
  if (std::isnan(x)) return x;
  if (x < 0) return -erf_double(-x);
  if (x >= 6.0) return 1.0;  // 1 - erf(6) = 2e-17, below half an ulp of 1
  // erf(x) = 2/sqrt(pi) e^(-x^2) sum_n 2^n x^(2n+1) / (1*3*...*(2n+1)): all
  // terms positive, so no cancellation at any x (Abramowitz & Stegun 7.1.6).
  const double two_x2 = 2.0 * x * x;
  double term = x;
  double sum = x;
  for (int n = 1; n < 400 && term > sum * 1e-18; ++n) {
    term = term * two_x2 / (2 * n + 1);
    sum += term;
  }
  return kTwoOverSqrtPi * exp_nonpositive(-x * x) * sum;
}

Params make_uniform_params(double low, double high) {
  require(is_finite(low) && is_finite(high), "uniform: low and high must be finite");
  require(low <= high, "uniform: low must not exceed high");
  Params p{};
  p.transform = Transform::kUniform;
  p.erf_scale = 1.0f;
  p.erf_shift = 0.0f;
  // mid + half * x keeps symmetric intervals exactly symmetric (mid = 0).
  p.scale = static_cast<float>((high - low) / 2);
  p.shift = static_cast<float>(low + (high - low) / 2);
  set_limits(p, low, high);
  return p;
}

Params make_normal_params(double mean, double std) {
  require(is_finite(mean), "normal: mean must be finite");
  require(is_finite(std) && std >= 0, "normal: std must be finite and >= 0");
  Params p{};
  p.transform = Transform::kNormal;
  p.erf_scale = 1.0f;
  p.erf_shift = 0.0f;
  p.scale = static_cast<float>(std * kSqrt2);  // N(0,1) = sqrt(2) erfinv(U(-1,1))
  p.shift = static_cast<float>(mean);
  p.lo = -std::numeric_limits<float>::infinity();
  p.hi = std::numeric_limits<float>::infinity();
  return p;
}

Params make_truncated_normal_params(double mean, double std, double lower, double upper) {
  require(is_finite(mean), "truncated_normal: mean must be finite");
  require(is_finite(std) && std >= 0, "truncated_normal: std must be finite and >= 0");
  require(!std::isnan(lower) && !std::isnan(upper) && lower < upper,
          "truncated_normal: need lower < upper");
  // Inverse CDF restricted to [lower, upper]: erfinv of a uniform on
  // (erf(lower/sqrt2), erf(upper/sqrt2)), written as mid + half * x.
  const double e_lo = erf_double(lower / kSqrt2);
  const double e_hi = erf_double(upper / kSqrt2);
  Params p = make_normal_params(mean, std);
  p.erf_scale = static_cast<float>((e_hi - e_lo) / 2);
  p.erf_shift = static_cast<float>(e_lo + (e_hi - e_lo) / 2);
  set_limits(p, std::isinf(lower) ? lower : mean + lower * std,
             std::isinf(upper) ? upper : mean + upper * std);
  return p;
}

Params make_polar_disk_params(double scale) {
  require(is_finite(scale) && scale >= 0, "disk: scale must be finite and >= 0");
  Params p{};
  p.transform = Transform::kPolarDisk;
  p.scale = static_cast<float>(scale);
  p.lo = -std::numeric_limits<float>::infinity();
  p.hi = std::numeric_limits<float>::infinity();
  return p;
}

Params make_polar_truncated_params(double std, double bound) {
  require(is_finite(std) && std >= 0, "truncated disk: std must be finite and >= 0");
  require(bound > 0, "truncated disk: bound must be > 0");
  // |z|^2 / std^2 ~ Exp(1) cut at bound^2: -log(1 - c u), c = 1 - e^(-bound^2), from
  // h = c/2 and g = 1 - c/2 (transforms.h, polar). e^-40 is below half an ulp of 1.
  // N.B. h <= 1/2 <= g in float32, so 1 - c u >= g - h (1 - 2^-24) >= 2^-25 > 0.
  const double b2 = bound * bound;
  // 1 - e^-x cancels for small x: below 2^-10 its series (to x^5; the rest is under
  // 2^-60 relative), above it the subtraction keeps 43 bits, more than float32 needs.
  const double c = b2 >= 40.0 ? 1.0
                   : b2 < 0x1p-10
                       ? b2 * (1.0 - b2 / 2 * (1.0 - b2 / 3 * (1.0 - b2 / 4 * (1.0 - b2 / 5))))
                       : 1.0 - exp_nonpositive(-b2);
  Params p{};
  p.transform = Transform::kPolarTruncated;
  p.erf_scale = static_cast<float>(c / 2);
  p.erf_shift = static_cast<float>(1.0 - c / 2);
  p.scale = static_cast<float>(std);
  p.lo = -std::numeric_limits<float>::infinity();
  p.hi = std::numeric_limits<float>::infinity();
  return p;
}

double max_magnitude(const Params& p) {
  if (p.transform == Transform::kPolarDisk || p.transform == Transform::kPolarTruncated) {
    // sqrt(2) resp. sqrt(-log(least 1 - c u)), with room for float32 rounding.
    // The least 1 - c u is g - h (1 - 2^-24), at least 2^-25.
    const double h = static_cast<double>(p.erf_scale);
    const double least = std::fmax(static_cast<double>(p.erf_shift) - h * (1.0 - 0x1p-24), 0x1p-25);
    const double radius =
        p.transform == Transform::kPolarDisk ? std::sqrt(2.0) : std::sqrt(-std::log(least));
    return std::fabs(static_cast<double>(p.scale)) * radius * (1.0 + 1e-6);
  }
  const double spread = p.transform == Transform::kNormal ? kErfinvMax : 1.0;
  double reach =
      std::fabs(static_cast<double>(p.shift)) + std::fabs(static_cast<double>(p.scale)) * spread;
  if (std::isfinite(p.lo)) reach = std::fmin(reach, std::fmax(std::fabs(p.lo), std::fabs(p.hi)));
  return reach;
}

}  // namespace fastinit
