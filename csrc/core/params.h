// core/params.h — user parameters (doubles) to the float32 Params every backend uses.
//
// Each function rounds each constant once, from a double computed with
// +, -, *, / and our own erf (no libm), so Params are the same bits on every
// host. Invalid arguments throw std::invalid_argument; Python checks them first
// with friendlier messages, this is the core guarding its own invariants.
#pragma once

#include "fastinit/params.h"

namespace fastinit {

// Uniform on (low, high); low <= high, both finite.
Params make_uniform_params(double low, double high);

// Normal with the given mean and standard deviation (std >= 0).
Params make_normal_params(double mean, double std);

// Normal(mean, std) restricted to [mean + lower*std, mean + upper*std];
// bounds in units of std, lower < upper, either may be infinite.
Params make_truncated_normal_params(double mean, double std, double lower, double upper);

// Complex values as (real, imaginary) pairs (params.h, the pair transforms), with
// E|z|^2 = scale^2 before any truncation:
// uniform on the disk of radius scale * sqrt(2) (scale >= 0, finite);
Params make_polar_disk_params(double scale);
// the complex normal (parts independent, each of variance std^2 / 2) cut to
// |z| < bound * std (std >= 0 finite, bound > 0, may be infinite).
Params make_polar_truncated_params(double std, double bound);

// Largest |value| a fill with these Params can produce (before output rounding).
double max_magnitude(const Params& p);

// erf in double, deterministic (series; no libm). Exposed for tests.
double erf_double(double x);

}  // namespace fastinit
