// fastinit/params.h — the one struct that crosses layers.
//
// Python computes nothing numeric that reaches a kernel: it passes the user's
// doubles to make_*_params (csrc/core/params.cpp), which rounds each constant
// once to float32 with documented rules. Every backend then receives the same
// float32 Params and evaluates the same transform on them.
#pragma once

#include "fastinit/config.h"

namespace fastinit {

// The transform applied to x = signed_unit(word):
//   kUniform: y = x
//   kNormal:  y = erfinv(clamp(fma(erf_scale, x, erf_shift), ±(1 - 2^-24)))
// then out = clamp(fma(scale, y, shift), lo, hi). The plain normal is kNormal
// with erf_scale = 1, erf_shift = 0 and infinite lo/hi.
//
// The pair transforms write complex values as (real, imaginary) float pairs:
// element 2m + k (k = 0 real, 1 imaginary) is part k of rho * (cos(pi a), sin(pi a))
// with a = signed_unit(word 2m + 1) and, from b = signed_unit(word 2m),
//   kPolarDisk:      rho = scale * sqrt(b + 1)               (uniform on a disk)
//   kPolarTruncated: rho = scale * sqrt(-log(1 - c u)), u = (b + 1) / 2, with
//                    erf_scale = c/2, erf_shift = 1 - c/2     (|z|^2 ~ Exp(1) cut)
// (transforms.h, polar). shift, lo and hi are unused (0, -inf, inf).
enum class Transform : std::uint32_t {
  kUniform = 0,
  kNormal = 1,
  kPolarDisk = 2,
  kPolarTruncated = 3,
};

// Whether element i of transform T reads words i and i ^ 1 (a pair) instead of word i.
template <Transform T>
constexpr bool kIsPair = T == Transform::kPolarDisk || T == Transform::kPolarTruncated;

// Element types a fill can write. Values are part of the Python binding.
enum class OutputType : std::uint32_t {
  kFloat32 = 0,
  kFloat64 = 1,
  kFloat16 = 2,
  kBFloat16 = 3,
  kUInt32 = 4,  // raw stream words, no transform
};

struct Params {
  Transform transform;
  float erf_scale;
  float erf_shift;
  float scale;
  float shift;
  float lo;
  float hi;
};

}  // namespace fastinit
