// The matmul micro-kernels, reading the weight rows in their own dtype (bf16/f16 widened exactly to
// fp32 in registers) and accumulating in fp32.
// DotTile: an MR x NR tile of dot products y[i][j] = x_i . w_j over K, 16 lanes (8 on AVX2 CPUs) then a
// fixed reduction tree; every output is summed in the same order whatever the tile shape, thread count or M >= 2.
// DotRow (decode, M == 1): one weight row at a time, read front to back with four 16-lane accumulators
// (k mod 64); its sums differ from DotTile's in the last bits. Reading the rows one after the other
// keeps each thread's weight stream sequential, which the hardware prefetchers follow far better than
// the 8 interleaved row streams of a 1 x 8 tile (measured here: 31-33 vs 28 GB/s in isolation).
#pragma once

#include <cstdint>
#include <type_traits>

#include "core/dtype.h"
#include "cpu/simd.h"

namespace starkv::cpu {

// x rows at stride ldx (floats), w rows at stride ldw (elements), y rows at stride ldy.
// mr <= MR and nr <= NR rows are real; the others read row 0 and are not stored.
template <int MR, int NR, DType WD>
inline void DotTile(const float* x, int64_t ldx, const void* w, int64_t ldw, int64_t K, float* y, int64_t ldy, int mr,
                    int nr) {
  const float* xr[MR];
  for (int i = 0; i < MR; ++i) xr[i] = x + (i < mr ? i : 0) * ldx;
#if defined(__AVX512F__)
  using WT = typename std::conditional<WD == DType::F32, float, uint16_t>::type;
  const WT* wr[NR];
  for (int j = 0; j < NR; ++j) wr[j] = static_cast<const WT*>(w) + (j < nr ? j : 0) * ldw;
  __m512 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    __m512 wv[NR];
    for (int j = 0; j < NR; ++j) {
      if constexpr (WD == DType::F32) wv[j] = Load16(wr[j] + k);
      else wv[j] = Load16(wr[j] + k, WD);
    }
    for (int i = 0; i < MR; ++i) {
      const __m512 xv = Load16(xr[i] + k);
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  if (k < K) {
    const __mmask16 m = TailMask(K - k);
    __m512 wv[NR];
    for (int j = 0; j < NR; ++j) {
      if constexpr (WD == DType::F32) wv[j] = Load16Masked(wr[j] + k, m);
      else wv[j] = Load16Masked(wr[j] + k, WD, m);
    }
    for (int i = 0; i < MR; ++i) {
      const __m512 xv = Load16Masked(xr[i] + k, m);
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < nr; ++j) y[i * ldy + j] = Hsum(acc[i][j]);
#elif defined(STARKV_AVX2)
  // AVX2: 8 lanes (k mod 8) then Hsum8, plus a scalar tail; the same order for every tile shape.
  using WT = typename std::conditional<WD == DType::F32, float, uint16_t>::type;
  const WT* wr[NR];
  for (int j = 0; j < NR; ++j) wr[j] = static_cast<const WT*>(w) + (j < nr ? j : 0) * ldw;
  __m256 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 wv[NR];
    for (int j = 0; j < NR; ++j) {
      if constexpr (WD == DType::F32) wv[j] = Load8(wr[j] + k);
      else wv[j] = Load8(wr[j] + k, WD);
    }
    for (int i = 0; i < MR; ++i) {
      const __m256 xv = _mm256_loadu_ps(xr[i] + k);
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < nr; ++j) {
      float tail = 0.0f;
      for (int64_t kk = k; kk < K; ++kk) tail += xr[i][kk] * LoadF32(wr[j], WD, kk);
      y[i * ldy + j] = Hsum8(acc[i][j]) + tail;
    }
#else
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < nr; ++j) {
      const void* wrow = static_cast<const char*>(w) + static_cast<size_t>(j * ldw) * DTypeSize(WD);
      y[i * ldy + j] = DotScalar16(xr[i], [&](int64_t kk) { return LoadF32(wrow, WD, kk); }, K);
    }
#endif
}

// R rows at once (rows j .. j+R-1), each summed exactly as alone: four 16-lane accumulators (k mod 64),
// the 16-wide remainder into the first, the masked tail into the second, then ((a0 + a1) + (a2 + a3)).
template <DType WD, int R>
inline void DotRowsR(const float* x, const void* w, int64_t ldw, int64_t K, float* y) {
  using WT = typename std::conditional<WD == DType::F32, float, uint16_t>::type;
  const WT* wr[R];
  for (int r = 0; r < R; ++r) wr[r] = static_cast<const WT*>(w) + r * ldw;
#if defined(__AVX512F__)
  auto load = [&](int r, int64_t k) {
    if constexpr (WD == DType::F32) return Load16(wr[r] + k);
    else return Load16(wr[r] + k, WD);
  };
  __m512 a[R][4];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < 4; ++j) a[r][j] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 64 <= K; k += 64)
    for (int j = 0; j < 4; ++j) {
      const __m512 xv = Load16(x + k + 16 * j);
      for (int r = 0; r < R; ++r) a[r][j] = _mm512_fmadd_ps(xv, load(r, k + 16 * j), a[r][j]);
    }
  for (; k + 16 <= K; k += 16) {
    const __m512 xv = Load16(x + k);
    for (int r = 0; r < R; ++r) a[r][0] = _mm512_fmadd_ps(xv, load(r, k), a[r][0]);
  }
  if (k < K) {
    const __mmask16 m = TailMask(K - k);
    const __m512 xv = Load16Masked(x + k, m);
    for (int r = 0; r < R; ++r) {
      __m512 wv;
      if constexpr (WD == DType::F32) wv = Load16Masked(wr[r] + k, m);
      else wv = Load16Masked(wr[r] + k, WD, m);
      a[r][1] = _mm512_fmadd_ps(xv, wv, a[r][1]);
    }
  }
  for (int r = 0; r < R; ++r) y[r] = Hsum(_mm512_add_ps(_mm512_add_ps(a[r][0], a[r][1]), _mm512_add_ps(a[r][2], a[r][3])));
#elif defined(STARKV_AVX2)
  // AVX2: four 8-lane accumulators (k mod 32), the 8-wide remainder into the first, a scalar tail, then
  // ((a0 + a1) + (a2 + a3)); the same for every R.
  auto load = [&](int r, int64_t k) {
    if constexpr (WD == DType::F32) return Load8(wr[r] + k);
    else return Load8(wr[r] + k, WD);
  };
  __m256 a[R][4];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < 4; ++j) a[r][j] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 32 <= K; k += 32)
    for (int j = 0; j < 4; ++j) {
      const __m256 xv = _mm256_loadu_ps(x + k + 8 * j);
      for (int r = 0; r < R; ++r) a[r][j] = _mm256_fmadd_ps(xv, load(r, k + 8 * j), a[r][j]);
    }
  for (; k + 8 <= K; k += 8) {
    const __m256 xv = _mm256_loadu_ps(x + k);
    for (int r = 0; r < R; ++r) a[r][0] = _mm256_fmadd_ps(xv, load(r, k), a[r][0]);
  }
  for (int r = 0; r < R; ++r) {
    float tail = 0.0f;
    for (int64_t kk = k; kk < K; ++kk) tail += x[kk] * LoadF32(wr[r], WD, kk);
    y[r] = Hsum8(_mm256_add_ps(_mm256_add_ps(a[r][0], a[r][1]), _mm256_add_ps(a[r][2], a[r][3]))) + tail;
  }
#else
  for (int r = 0; r < R; ++r) y[r] = DotScalar16(x, [&](int64_t kk) { return LoadF32(wr[r], WD, kk); }, K);
#endif
}

// y[j] = x . w_j for the n rows w_j = w + j * ldw (x and each row hold K values). Rows are read one
// after the other while x fits in L1 with room to spare; beyond that (K > 4096) four rows share each
// load of x (measured here: one row at a time streams 33 GB/s at K = 1536 but 22 at K = 8960, where four
// rows reach 31). The sums are the same either way.
template <DType WD>
inline void DotRow(const float* x, const void* w, int64_t ldw, int64_t K, float* y, int64_t n) {
  const size_t esz = DTypeSize(WD);
  const char* wb = static_cast<const char*>(w);
  int64_t j = 0;
  if (K > 4096)
    for (; j + 4 <= n; j += 4) DotRowsR<WD, 4>(x, wb + j * ldw * esz, ldw, K, y + j);
  for (; j < n; ++j) DotRowsR<WD, 1>(x, wb + j * ldw * esz, ldw, K, y + j);
}

}  // namespace starkv::cpu
