// cpu/simd.h — vector types that let the shared transforms run on W lanes at once.
//
// Included only by cpu/kernel.cpp, which is compiled once per instruction set with
// FASTINIT_CPU_AVX2 or FASTINIT_CPU_AVX512 defined. Each type supplies exactly the
// operators and free functions of fastinit/config.h that the shared headers use,
// with the same IEEE semantics lane by lane, so transforms.h and convert.h
// instantiate unchanged and give the scalar reference's bits:
//   F  float lanes     U  uint32 lanes     I  int32 lanes     M  lane mask
// N.B. min/max keep config.h's exact definition min(a, b) = b < a ? b : a, which
// is the x86 instruction with its operands swapped (it matters for signed zeros).
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "fastinit/config.h"
#include "fastinit/round.h"

#if defined(FASTINIT_CPU_AVX512)
#define FASTINIT_CPU_TARGET avx512
#elif defined(FASTINIT_CPU_AVX2)
#define FASTINIT_CPU_TARGET avx2
#else
#error "cpu/simd.h needs FASTINIT_CPU_AVX2 or FASTINIT_CPU_AVX512"
#endif

namespace fastinit {
namespace cpu {
namespace FASTINIT_CPU_TARGET {

#if defined(FASTINIT_CPU_AVX512)

constexpr unsigned kLanes = 16;
constexpr unsigned kPhiloxWays = 2;  // measured: 2x over 1; 4 spills the 32 registers

struct F {
  __m512 v;
  F() = default;
  F(__m512 x) : v(x) {}                 // NOLINT(google-explicit-constructor)
  F(float x) : v(_mm512_set1_ps(x)) {}  // NOLINT: broadcast of a constant
};
struct U {
  __m512i v;
  U() = default;
  U(__m512i x) : v(x) {}                                                      // NOLINT
  U(std::uint32_t x) : v(_mm512_set1_epi32(static_cast<std::int32_t>(x))) {}  // NOLINT
};
struct I {
  __m512i v;
  I() = default;
  I(__m512i x) : v(x) {}                          // NOLINT
  I(std::int32_t x) : v(_mm512_set1_epi32(x)) {}  // NOLINT
};
struct M {
  __mmask16 v;
};

FASTINIT_INLINE F operator+(F a, F b) { return _mm512_add_ps(a.v, b.v); }
FASTINIT_INLINE F operator-(F a, F b) { return _mm512_sub_ps(a.v, b.v); }
FASTINIT_INLINE F operator*(F a, F b) { return _mm512_mul_ps(a.v, b.v); }
FASTINIT_INLINE F operator-(F a) {
  return _mm512_castsi512_ps(
      _mm512_xor_si512(_mm512_castps_si512(a.v), _mm512_set1_epi32(INT32_MIN)));
}
FASTINIT_INLINE F fma(F a, F b, F c) { return _mm512_fmadd_ps(a.v, b.v, c.v); }
FASTINIT_INLINE F sqrt(F a) { return _mm512_sqrt_ps(a.v); }
FASTINIT_INLINE F div(F a, F b) { return _mm512_div_ps(a.v, b.v); }
FASTINIT_INLINE F min(F a, F b) { return _mm512_min_ps(b.v, a.v); }
FASTINIT_INLINE F max(F a, F b) { return _mm512_max_ps(b.v, a.v); }
FASTINIT_INLINE M operator>=(F a, F b) { return M{_mm512_cmp_ps_mask(a.v, b.v, _CMP_GE_OQ)}; }
FASTINIT_INLINE F select(M m, F a, F b) { return _mm512_mask_blend_ps(m.v, b.v, a.v); }
FASTINIT_INLINE bool any(M m) { return m.v != 0; }

FASTINIT_INLINE U operator+(U a, U b) { return _mm512_add_epi32(a.v, b.v); }
FASTINIT_INLINE U operator&(U a, U b) { return _mm512_and_si512(a.v, b.v); }
FASTINIT_INLINE U operator|(U a, U b) { return _mm512_or_si512(a.v, b.v); }
FASTINIT_INLINE U operator^(U a, U b) { return _mm512_xor_si512(a.v, b.v); }
FASTINIT_INLINE U operator>>(U a, unsigned n) { return _mm512_srli_epi32(a.v, n); }
FASTINIT_INLINE I operator-(I a, I b) { return _mm512_sub_epi32(a.v, b.v); }
FASTINIT_INLINE U bits_of(F a) { return _mm512_castps_si512(a.v); }
FASTINIT_INLINE F float_from_bits(U a) { return _mm512_castsi512_ps(a.v); }
FASTINIT_INLINE I as_signed(U a) { return a.v; }
FASTINIT_INLINE F to_float(I a) { return _mm512_cvtepi32_ps(a.v); }

// 32 x 32 -> 64 bit products of every lane with a constant: (low words, high words).
FASTINIT_INLINE U mulhilo(U a, std::uint32_t m, U* hi) {
  const __m512i mv = _mm512_set1_epi32(static_cast<std::int32_t>(m));
  const __m512i even = _mm512_mul_epu32(a.v, mv);                        // lanes 0, 2, ...
  const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(a.v, 32), mv);  // lanes 1, 3, ...
  *hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
  return _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
}

FASTINIT_INLINE U load(const std::uint32_t* p) { return _mm512_loadu_si512(p); }

// Four vectors of block-major words (w[j] lane l = word j of block l) to element
// order (out[k] lane l = element 16k + l of the group).
FASTINIT_INLINE void to_element_order(const U w[4], U out[4]) {
  const __m512i lo_pairs =
      _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi_pairs =
      _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const __m512i w01_lo = _mm512_permutex2var_epi32(w[0].v, lo_pairs, w[1].v);
  const __m512i w01_hi = _mm512_permutex2var_epi32(w[0].v, hi_pairs, w[1].v);
  const __m512i w23_lo = _mm512_permutex2var_epi32(w[2].v, lo_pairs, w[3].v);
  const __m512i w23_hi = _mm512_permutex2var_epi32(w[2].v, hi_pairs, w[3].v);
  const __m512i first = _mm512_setr_epi32(0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
  const __m512i second =
      _mm512_setr_epi32(8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
  out[0] = _mm512_permutex2var_epi32(w01_lo, first, w23_lo);
  out[1] = _mm512_permutex2var_epi32(w01_lo, second, w23_lo);
  out[2] = _mm512_permutex2var_epi32(w01_hi, first, w23_hi);
  out[3] = _mm512_permutex2var_epi32(w01_hi, second, w23_hi);
}

FASTINIT_INLINE void store(std::uint32_t* p, U w) { _mm512_storeu_si512(p, w.v); }
FASTINIT_INLINE void store(float* p, F x) { _mm512_storeu_ps(p, x.v); }
FASTINIT_INLINE void store(double* p, F x) {
  _mm512_storeu_pd(p, _mm512_cvtps_pd(_mm512_castps512_ps256(x.v)));
  _mm512_storeu_pd(p + 8, _mm512_cvtps_pd(_mm512_extractf32x8_ps(x.v, 1)));
}
FASTINIT_INLINE void store_halves(void* p, __m512i halves) {  // low 16 bits of each lane
  _mm256_storeu_si256(static_cast<__m256i*>(p), _mm512_cvtepi32_epi16(halves));
}
FASTINIT_INLINE void store(Float16Bits* p, F x) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p),
                      _mm512_cvtps_ph(x.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

#else  // AVX2 + FMA + F16C

constexpr unsigned kLanes = 8;
constexpr unsigned kPhiloxWays = 4;  // measured: 1.8x over 1, 1.2x over 2

struct F {
  __m256 v;
  F() = default;
  F(__m256 x) : v(x) {}                 // NOLINT(google-explicit-constructor)
  F(float x) : v(_mm256_set1_ps(x)) {}  // NOLINT: broadcast of a constant
};
struct U {
  __m256i v;
  U() = default;
  U(__m256i x) : v(x) {}                                                      // NOLINT
  U(std::uint32_t x) : v(_mm256_set1_epi32(static_cast<std::int32_t>(x))) {}  // NOLINT
};
struct I {
  __m256i v;
  I() = default;
  I(__m256i x) : v(x) {}                          // NOLINT
  I(std::int32_t x) : v(_mm256_set1_epi32(x)) {}  // NOLINT
};
struct M {
  __m256 v;
};

FASTINIT_INLINE F operator+(F a, F b) { return _mm256_add_ps(a.v, b.v); }
FASTINIT_INLINE F operator-(F a, F b) { return _mm256_sub_ps(a.v, b.v); }
FASTINIT_INLINE F operator*(F a, F b) { return _mm256_mul_ps(a.v, b.v); }
FASTINIT_INLINE F operator-(F a) { return _mm256_xor_ps(a.v, _mm256_set1_ps(-0.0f)); }
FASTINIT_INLINE F fma(F a, F b, F c) { return _mm256_fmadd_ps(a.v, b.v, c.v); }
FASTINIT_INLINE F sqrt(F a) { return _mm256_sqrt_ps(a.v); }
FASTINIT_INLINE F div(F a, F b) { return _mm256_div_ps(a.v, b.v); }
FASTINIT_INLINE F min(F a, F b) { return _mm256_min_ps(b.v, a.v); }
FASTINIT_INLINE F max(F a, F b) { return _mm256_max_ps(b.v, a.v); }
FASTINIT_INLINE M operator>=(F a, F b) { return M{_mm256_cmp_ps(a.v, b.v, _CMP_GE_OQ)}; }
FASTINIT_INLINE F select(M m, F a, F b) { return _mm256_blendv_ps(b.v, a.v, m.v); }
FASTINIT_INLINE bool any(M m) { return _mm256_movemask_ps(m.v) != 0; }

FASTINIT_INLINE U operator+(U a, U b) { return _mm256_add_epi32(a.v, b.v); }
FASTINIT_INLINE U operator&(U a, U b) { return _mm256_and_si256(a.v, b.v); }
FASTINIT_INLINE U operator|(U a, U b) { return _mm256_or_si256(a.v, b.v); }
FASTINIT_INLINE U operator^(U a, U b) { return _mm256_xor_si256(a.v, b.v); }
FASTINIT_INLINE U operator>>(U a, unsigned n) {
  return _mm256_srli_epi32(a.v, static_cast<int>(n));
}
FASTINIT_INLINE I operator-(I a, I b) { return _mm256_sub_epi32(a.v, b.v); }
FASTINIT_INLINE U bits_of(F a) { return _mm256_castps_si256(a.v); }
FASTINIT_INLINE F float_from_bits(U a) { return _mm256_castsi256_ps(a.v); }
FASTINIT_INLINE I as_signed(U a) { return a.v; }
FASTINIT_INLINE F to_float(I a) { return _mm256_cvtepi32_ps(a.v); }

// 32 x 32 -> 64 bit products of every lane with a constant: (low words, high words).
FASTINIT_INLINE U mulhilo(U a, std::uint32_t m, U* hi) {
  const __m256i mv = _mm256_set1_epi32(static_cast<std::int32_t>(m));
  const __m256i even = _mm256_mul_epu32(a.v, mv);                        // lanes 0, 2, ...
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a.v, 32), mv);  // lanes 1, 3, ...
  *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
  return _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}

FASTINIT_INLINE U load(const std::uint32_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// Four vectors of block-major words (w[j] lane l = word j of block l) to element
// order (out[k] lane l = element 8k + l of the group): a 4 x 8 transpose.
FASTINIT_INLINE void to_element_order(const U w[4], U out[4]) {
  const __m256i t0 = _mm256_unpacklo_epi32(w[0].v, w[1].v);  // blocks 0,1 | 4,5 of words 0,1
  const __m256i t1 = _mm256_unpackhi_epi32(w[0].v, w[1].v);  // blocks 2,3 | 6,7
  const __m256i t2 = _mm256_unpacklo_epi32(w[2].v, w[3].v);
  const __m256i t3 = _mm256_unpackhi_epi32(w[2].v, w[3].v);
  const __m256i b04 = _mm256_unpacklo_epi64(t0, t2);  // block 0 | block 4, words 0..3
  const __m256i b15 = _mm256_unpackhi_epi64(t0, t2);
  const __m256i b26 = _mm256_unpacklo_epi64(t1, t3);
  const __m256i b37 = _mm256_unpackhi_epi64(t1, t3);
  out[0] = _mm256_permute2x128_si256(b04, b15, 0x20);
  out[1] = _mm256_permute2x128_si256(b26, b37, 0x20);
  out[2] = _mm256_permute2x128_si256(b04, b15, 0x31);
  out[3] = _mm256_permute2x128_si256(b26, b37, 0x31);
}

FASTINIT_INLINE void store(std::uint32_t* p, U w) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), w.v);
}
FASTINIT_INLINE void store(float* p, F x) { _mm256_storeu_ps(p, x.v); }
FASTINIT_INLINE void store(double* p, F x) {
  _mm256_storeu_pd(p, _mm256_cvtps_pd(_mm256_castps256_ps128(x.v)));
  _mm256_storeu_pd(p + 4, _mm256_cvtps_pd(_mm256_extractf128_ps(x.v, 1)));
}
FASTINIT_INLINE void store_halves(void* p, __m256i halves) {   // low 16 bits of each lane
  const __m256i packed = _mm256_packus_epi32(halves, halves);  // per 128-bit half
  _mm_storeu_si128(static_cast<__m128i*>(p),
                   _mm256_castsi256_si128(_mm256_permute4x64_epi64(packed, 0x08)));
}
FASTINIT_INLINE void store(Float16Bits* p, F x) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p),
                   _mm256_cvtps_ph(x.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

#endif

// bfloat16: round to nearest even on the bit pattern, as round.h does per value.
FASTINIT_INLINE void store(BFloat16Bits* p, F x) {
  const U u = bits_of(x);
  const U rounded = (u + U(0x7FFFu) + ((u >> 16) & U(1u))) >> 16;
  store_halves(p, rounded.v);
}

}  // namespace FASTINIT_CPU_TARGET
}  // namespace cpu
}  // namespace fastinit
