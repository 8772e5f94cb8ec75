// SIMD helpers: AVX-512 16-lane fp32 loads from fp32/bf16/f16 (full or masked tail), reductions and exp;
// an AVX2 + FMA 8-lane exp and reductions for CPUs without AVX-512. Each is guarded by its ISA macro;
// callers keep a scalar path for other CPUs.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__AVX512F__)
// GCC 12 reports -Wmaybe-uninitialized inside the intrinsics headers (their _mm512_undefined_* temps)
// once inlined; the locations are the header's, so silencing them around the include is enough.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#elif defined(__AVX2__)
#include <immintrin.h>
#endif

#include "core/dtype.h"

namespace starkv::cpu {

// Cephes expf, shared by the vector exps (Exp16, Exp8): the input range (below kExpLo the result is
// flushed to 0, above kExpHi it is +inf), ln 2 split in two for the range reduction, and the degree-6
// polynomial's coefficients, highest first.
namespace cephes {
constexpr float kExpLo = -87.33654f, kExpHi = 88.72283f, kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
constexpr float kP[6] = {1.9875691500E-4f, 1.3981999507E-3f, 8.3334519073E-3f, 4.1665795894E-2f, 1.6666665459E-1f, 5.0000001201E-1f};
}  // namespace cephes

#if defined(__AVX512F__)
constexpr bool kHaveAvx512 = true;

inline __m512 Load16(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 Load16(const uint16_t* p, DType t) {
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  if (t == DType::F16) return _mm512_cvtph_ps(h);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
inline __m512 Load16Masked(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
inline __m512 Load16Masked(const uint16_t* p, DType t, __mmask16 m) {
  const __m256i h = _mm256_maskz_loadu_epi16(m, p);
  if (t == DType::F16) return _mm512_cvtph_ps(h);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
inline __mmask16 TailMask(int64_t r) { return static_cast<__mmask16>((1u << r) - 1u); }
// Fixed-order horizontal sum (halving tree), the same on every call.
inline float Hsum(__m512 v) {
  const __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  const __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  const __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
  const __m128 d = _mm_add_ss(c, _mm_movehdup_ps(c));
  return _mm_cvtss_f32(d);
}
// e^x for 16 lanes (Cephes expf: range reduction by ln2, degree-6 polynomial; ~1 ulp). Lanes below
// kExpLo (including -inf) give exactly 0; lanes above kExpHi saturate at e^kExpHi (~3.4e38, finite).
inline __m512 Exp16(__m512 x) {
  using namespace cephes;
  const __mmask16 under = _mm512_cmp_ps_mask(x, _mm512_set1_ps(kExpLo), _CMP_LT_OQ);
  x = _mm512_min_ps(x, _mm512_set1_ps(kExpHi));
  x = _mm512_max_ps(x, _mm512_set1_ps(kExpLo));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Hi), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Lo), r);
  __m512 p = _mm512_set1_ps(kP[0]);
  for (int i = 1; i < 6; ++i) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP[i]));
  const __m512 r2 = _mm512_mul_ps(r, r);
  const __m512 y = _mm512_add_ps(_mm512_fmadd_ps(p, r2, r), _mm512_set1_ps(1.0f));
  return _mm512_maskz_mov_ps(static_cast<__mmask16>(~under), _mm512_scalef_ps(y, n));
}
// 16 floats -> bf16 in lanes, bit for bit F32ToBf16 (core/dtype.h): round to nearest even, subnormals
// kept, NaNs kept quiet (not vcvtneps2bf16, which flushes subnormals).
inline __m256i Bf16x16(__m512 f) {
  const __m512i u = _mm512_castps_si512(f);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), lsb)), 16);
  const __mmask16 nan = _mm512_cmp_ps_mask(f, f, _CMP_UNORD_Q);
  r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
  return _mm512_cvtepi32_epi16(r);
}
#else
constexpr bool kHaveAvx512 = false;
#endif

// AVX2 + FMA (CPUs without AVX-512: most desktop CPUs, AMD Zen 1-3): 8-lane versions of the hot helpers,
// the same Cephes expf as Exp16.
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__) && !defined(__AVX512F__)
#define STARKV_AVX2 1

// 8 fp32 lanes from fp32, or from bf16/f16 widened exactly.
inline __m256 Load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 Load8(const uint16_t* p, DType t) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  if (t == DType::F16) return _mm256_cvtph_ps(h);
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// Fixed-order horizontal sum (halving tree), the same on every call.
inline float Hsum8(__m256 v) {
  const __m128 b = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
  const __m128 d = _mm_add_ss(c, _mm_movehdup_ps(c));
  return _mm_cvtss_f32(d);
}
inline float Hmax8(__m256 v) {
  const __m128 b = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 c = _mm_max_ps(b, _mm_movehl_ps(b, b));
  const __m128 d = _mm_max_ss(c, _mm_movehdup_ps(c));
  return _mm_cvtss_f32(d);
}
// e^x for 8 lanes, as Exp16 (the same edges: 0 below kExpLo, saturated above kExpHi). 2^n is built in the
// exponent bits; n in [-126, 128], and 2^128 is split as 2^64 * 2^64.
inline __m256 Exp8(__m256 x) {
  using namespace cephes;
  const __m256 under = _mm256_cmp_ps(x, _mm256_set1_ps(kExpLo), _CMP_LT_OQ);
  x = _mm256_min_ps(x, _mm256_set1_ps(kExpHi));
  x = _mm256_max_ps(x, _mm256_set1_ps(kExpLo));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), r);
  __m256 p = _mm256_set1_ps(kP[0]);
  for (int i = 1; i < 6; ++i) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP[i]));
  const __m256 r2 = _mm256_mul_ps(r, r);
  const __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, r2, r), _mm256_set1_ps(1.0f));
  // y * 2^n as y * 2^h * 2^(n-h), h = n/2 rounded toward zero: both factors stay normal for n in [-126, 128].
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i hi = _mm256_srai_epi32(ni, 1);
  const __m256i lo = _mm256_sub_epi32(ni, hi);
  const __m256 p1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(hi, _mm256_set1_epi32(127)), 23));
  const __m256 p2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(lo, _mm256_set1_epi32(127)), 23));
  return _mm256_andnot_ps(under, _mm256_mul_ps(_mm256_mul_ps(y, p1), p2));
}
#endif

// Lane-structured scalar dot product: 16 partial sums (lane l takes k = l mod 16) reduced by the same
// tree as Hsum, so the scalar path gives the same bits as the AVX-512 path (barring FMA contraction).
template <class LoadW>
inline float DotScalar16(const float* a, LoadW w, int64_t K) {
  float lane[16] = {0};
  for (int64_t k = 0; k < K; ++k) lane[k & 15] += a[k] * w(k);
  float h8[8], h4[4];
  for (int i = 0; i < 8; ++i) h8[i] = lane[i] + lane[i + 8];
  for (int i = 0; i < 4; ++i) h4[i] = h8[i] + h8[i + 4];
  const float c0 = h4[0] + h4[2], c1 = h4[1] + h4[3];
  return c0 + c1;
}

}  // namespace starkv::cpu
