// AVX-512 helpers: 16-lane fp32 loads from fp32/bf16/f16 (full or masked tail) and reductions.
// Everything here is guarded by __AVX512F__; callers keep a scalar path for other CPUs.
#pragma once

#include <cstdint>

#if defined(__AVX512F__)
// GCC 12 reports -Wmaybe-uninitialized inside the intrinsics headers (their _mm512_undefined_* temps)
// once inlined; the locations are the header's, so silencing them around the include is enough.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif

#include "core/dtype.h"

namespace starkv::cpu {

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
// -87.3 (including -inf) give exactly 0, lanes above 88.7 give +inf.
inline __m512 Exp16(__m512 x) {
  const __mmask16 under = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.33654f), _CMP_LT_OQ);
  x = _mm512_min_ps(x, _mm512_set1_ps(88.72283f));
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.33654f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500E-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507E-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073E-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894E-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459E-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201E-1f));
  const __m512 r2 = _mm512_mul_ps(r, r);
  const __m512 y = _mm512_add_ps(_mm512_fmadd_ps(p, r2, r), _mm512_set1_ps(1.0f));
  return _mm512_maskz_mov_ps(static_cast<__mmask16>(~under), _mm512_scalef_ps(y, n));
}
#else
constexpr bool kHaveAvx512 = false;
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
