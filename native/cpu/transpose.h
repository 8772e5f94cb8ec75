// Widening of a block of weight rows to fp32 in transposed layout: dst[k][r] = fp32(W[n0 + r][k]),
// the "B" operand of a row-major NN sgemm (faster than NT in oneDNN here). 16x16 register tiles (8x8 on
// AVX2 CPUs).
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "cpu/simd.h"

namespace starkv::cpu {

#if defined(__AVX512F__)
inline void Transpose16x16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int h = 0; h < 2; ++h)
    for (int i = 0; i < 4; ++i) {
      t[8 * h + i] = _mm512_shuffle_f32x4(r[8 * h + i], r[8 * h + 4 + i], 0x88);
      t[8 * h + 4 + i] = _mm512_shuffle_f32x4(r[8 * h + i], r[8 * h + 4 + i], 0xdd);
    }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
    r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xdd);
  }
}
#elif defined(STARKV_AVX2)
inline void Transpose8x8(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; ++i) {
    u[4 * i + 0] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xee);
    u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xee);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(u[i], u[4 + i], 0x20);
    r[4 + i] = _mm256_permute2f128_ps(u[i], u[4 + i], 0x31);
  }
}
#endif

// dst [K][ld] (ld >= nb): dst[k * ld + r] = W[n0 + r][k] for r < nb, k < K.
inline void WidenRowsTransposed(const Tensor& W, int64_t n0, int64_t nb, int64_t K, float* dst, int64_t ld) {
  const DType t = W.dtype;
  int64_t r0 = 0;
#if defined(__AVX512F__)
  for (; r0 + 16 <= nb; r0 += 16) {
    const void* rows[16];
    for (int i = 0; i < 16; ++i) rows[i] = W.Row(n0 + r0 + i);
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
      __m512 v[16];
      for (int i = 0; i < 16; ++i)
        v[i] = t == DType::F32 ? Load16(static_cast<const float*>(rows[i]) + k)
                               : Load16(static_cast<const uint16_t*>(rows[i]) + k, t);
      Transpose16x16(v);
      for (int i = 0; i < 16; ++i) _mm512_storeu_ps(dst + (k + i) * ld + r0, v[i]);
    }
    for (; k < K; ++k)
      for (int i = 0; i < 16; ++i) dst[k * ld + r0 + i] = LoadF32(rows[i], t, k);
  }
#elif defined(STARKV_AVX2)
  for (; r0 + 8 <= nb; r0 += 8) {
    const void* rows[8];
    for (int i = 0; i < 8; ++i) rows[i] = W.Row(n0 + r0 + i);
    int64_t k = 0;
    for (; k + 8 <= K; k += 8) {
      __m256 v[8];
      for (int i = 0; i < 8; ++i)
        v[i] = t == DType::F32 ? Load8(static_cast<const float*>(rows[i]) + k) : Load8(static_cast<const uint16_t*>(rows[i]) + k, t);
      Transpose8x8(v);
      for (int i = 0; i < 8; ++i) _mm256_storeu_ps(dst + (k + i) * ld + r0, v[i]);
    }
    for (; k < K; ++k)
      for (int i = 0; i < 8; ++i) dst[k * ld + r0 + i] = LoadF32(rows[i], t, k);
  }
#endif
  for (; r0 < nb; ++r0) {
    const void* row = W.Row(n0 + r0);
    for (int64_t k = 0; k < K; ++k) dst[k * ld + r0] = LoadF32(row, t, k);
  }
}

}  // namespace starkv::cpu
