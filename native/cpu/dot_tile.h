// The matmul micro-kernel: an MR x NR tile of dot products y[i][j] = x_i . w_j over K, reading the
// weight rows in their own dtype (bf16/f16 widened exactly to fp32 in registers) and accumulating in
// fp32, 16 lanes then a fixed reduction tree. Every output is summed in the same order whatever the
// tile shape, thread count or M, so decode and (built-in) prefill give identical bits.
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
#else
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < nr; ++j) {
      const void* wrow = static_cast<const char*>(w) + static_cast<size_t>(j * ldw) * DTypeSize(WD);
      y[i * ldy + j] = DotScalar16(xr[i], [&](int64_t kk) { return LoadF32(wrow, WD, kk); }, K);
    }
#endif
}

}  // namespace starkv::cpu
