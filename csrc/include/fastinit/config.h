// fastinit/config.h — the one portability header.
//
// Everything that differs between a host compiler and nvcc lives here: the
// host/device decorator, forced inlining, and the handful of scalar float
// operations whose rounding we pin down (fma, sqrt, division). Every other
// header is written once against these and compiles unchanged for the scalar
// reference, the SIMD kernels and CUDA.
//
// N.B. FASTINIT_INLINE functions have internal linkage: the SIMD kernels compile
// these headers once per instruction set, and a shared inline definition could be
// merged across those translation units, running AVX-512 code on a CPU without it.
//
// N.B. Bit-for-bit reproducibility needs contraction of a*b+c into FMA to be
// off in every translation unit that includes these headers (-ffp-contract=off,
// nvcc --fmad=false). Where we want an FMA we write fastinit::fma explicitly.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define FASTINIT_CUDA_COMPILER 1
#define FASTINIT_HOST_DEVICE __host__ __device__
#define FASTINIT_INLINE static __forceinline__
#else
#define FASTINIT_CUDA_COMPILER 0
#define FASTINIT_HOST_DEVICE
#if defined(_MSC_VER)
#define FASTINIT_INLINE static __forceinline
#else
#define FASTINIT_INLINE static inline __attribute__((always_inline))
#endif
#endif

#if !FASTINIT_CUDA_COMPILER
#include <cmath>
#endif

namespace fastinit {

// Scalar float primitives. Each is correctly rounded (IEEE 754
// round-to-nearest-even) on every host and on CUDA, which is what makes the
// transforms reproducible. On the host std::fma is the single-rounding fma of
// C99, in hardware when the target has it and in libm otherwise.
FASTINIT_HOST_DEVICE FASTINIT_INLINE float fma(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}

FASTINIT_HOST_DEVICE FASTINIT_INLINE float sqrt(float x) {
#if defined(__CUDA_ARCH__)
  return __fsqrt_rn(x);
#else
  return std::sqrt(x);
#endif
}

FASTINIT_HOST_DEVICE FASTINIT_INLINE float div(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}

FASTINIT_HOST_DEVICE FASTINIT_INLINE float min(float a, float b) { return b < a ? b : a; }
FASTINIT_HOST_DEVICE FASTINIT_INLINE float max(float a, float b) { return a < b ? b : a; }

// Lane-wise choice and "does any lane need this branch": the scalar versions
// of what a SIMD vector type provides, so one transform source serves both.
FASTINIT_HOST_DEVICE FASTINIT_INLINE float select(bool c, float a, float b) { return c ? a : b; }
FASTINIT_HOST_DEVICE FASTINIT_INLINE bool any(bool c) { return c; }

FASTINIT_HOST_DEVICE FASTINIT_INLINE std::uint32_t bits_of(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#else
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
#endif
}

FASTINIT_HOST_DEVICE FASTINIT_INLINE float float_from_bits(std::uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
#endif
}

// int32 -> float32; exact for |v| < 2^24, the only range the transforms use.
FASTINIT_HOST_DEVICE FASTINIT_INLINE float to_float(std::int32_t v) {
  return static_cast<float>(v);
}

}  // namespace fastinit
