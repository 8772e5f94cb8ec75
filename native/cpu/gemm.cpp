// Matmul dispatch: decode tiles, weight-block widening, oneDNN or built-in GEMM.
#include "cpu/gemm.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "cpu/dot_tile.h"

#if defined(STARKV_HAVE_DNNL)
#include <dnnl.h>
#endif

namespace starkv::cpu {
namespace {

// Rows [n0, n1) of W times all M rows of x into y (row stride ldy), W read in its own dtype.
template <DType WD>
void DotRange(const float* x, int64_t M, int64_t K, const void* w, int64_t n0, int64_t n1, float* y, int64_t ldy) {
  const size_t esz = DTypeSize(WD);
  const char* wb = static_cast<const char*>(w);
  if (M == 1) {
    constexpr int NR = 8;
    for (int64_t n = n0; n < n1; n += NR) {
      const int nr = static_cast<int>(std::min<int64_t>(NR, n1 - n));
      DotTile<1, NR, WD>(x, K, wb + n * K * esz, K, K, y + n, ldy, 1, nr);
    }
    return;
  }
  constexpr int MR = 4, NR = 4;
  for (int64_t n = n0; n < n1; n += NR) {
    const int nr = static_cast<int>(std::min<int64_t>(NR, n1 - n));
    for (int64_t m = 0; m < M; m += MR) {
      const int mr = static_cast<int>(std::min<int64_t>(MR, M - m));
      DotTile<MR, NR, WD>(x + m * K, K, wb + n * K * esz, K, K, y + m * ldy + n, ldy, mr, nr);
    }
  }
}

void DotRangeAny(DType t, const float* x, int64_t M, int64_t K, const void* w, int64_t n0, int64_t n1, float* y,
                 int64_t ldy) {
  switch (t) {
    case DType::F32: DotRange<DType::F32>(x, M, K, w, n0, n1, y, ldy); break;
    case DType::BF16: DotRange<DType::BF16>(x, M, K, w, n0, n1, y, ldy); break;
    case DType::F16: DotRange<DType::F16>(x, M, K, w, n0, n1, y, ldy); break;
  }
}

// dst[r][k] = fp32(W[n0 + r][k]) for r < nb.
void WidenRows(ThreadPool& pool, const Tensor& W, int64_t n0, int64_t nb, int64_t K, float* dst) {
  const DType t = W.dtype;
  pool.ParallelFor(nb, 8, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const uint16_t* s = static_cast<const uint16_t*>(W.Row(n0 + r));
      float* d = dst + r * K;
      int64_t k = 0;
#if defined(__AVX512F__)
      for (; k + 16 <= K; k += 16) _mm512_storeu_ps(d + k, Load16(s + k, t));
#endif
      for (; k < K; ++k) d[k] = t == DType::BF16 ? Bf16ToF32(s[k]) : F16ToF32(s[k]);
    }
  });
}

float* Workspace(GemmContext& ctx, int64_t floats) {
  const size_t bytes = static_cast<size_t>(floats) * sizeof(float);
  if (ctx.workspace->bytes() < bytes) {
    ctx.workspace->Release();
    *ctx.workspace = Buffer(ctx.account, MemCategory::Workspace, bytes);
  }
  return ctx.workspace->f();
}

// C[:, 0:nb] (row stride ldc) = A[M,K] . B[nb,K]^T, B fp32.
void GemmF32Block(GemmContext& ctx, int64_t M, int64_t nb, int64_t K, const float* A, const float* B, float* C,
                  int64_t ldc) {
#if defined(STARKV_HAVE_DNNL)
  if (ctx.use_dnnl) {
    SetDnnlThreads(ctx.pool->size());
    const dnnl_status_t st = dnnl_sgemm('N', 'T', M, nb, K, 1.0f, A, K, B, K, 0.0f, C, ldc);
    if (st != dnnl_success) throw Error("oneDNN sgemm failed (status " + std::to_string(static_cast<int>(st)) + ")");
    return;
  }
#endif
  ctx.pool->ParallelFor(nb, 16, [&](int64_t b, int64_t e) { DotRange<DType::F32>(A, M, K, B, b, e, C, ldc); });
}

}  // namespace

bool HaveDnnl() {
#if defined(STARKV_HAVE_DNNL)
  return true;
#else
  return false;
#endif
}

void SetDnnlThreads(int n) {
  using Fn = void (*)(int);
  static const Fn fn = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));  // immutable once set
  if (fn) fn(std::max(1, n));
}

void MatMul(GemmContext& ctx, const float* x, int64_t M, const Tensor& W, const Tensor* bias, float* y) {
  const int64_t N = W.Rows(), K = W.Cols();
  if (M <= 0 || N <= 0) return;
  if (M < ctx.large_m) {
    // Decode: split the weight rows among threads; each thread streams its rows once.
    ctx.pool->ParallelFor(N, 32, [&](int64_t b, int64_t e) { DotRangeAny(W.dtype, x, M, K, W.data, b, e, y, N); });
  } else if (W.dtype == DType::F32) {
    GemmF32Block(ctx, M, N, K, x, static_cast<const float*>(W.data), y, N);
  } else {
    // Prefill: widen a block of weight rows once, use it for all M rows.
    const int64_t target = (int64_t(8) << 20) / 4;  // ~8 MB of fp32 weights per block
    int64_t nb = std::max<int64_t>(64, target / std::max<int64_t>(1, K));
    nb = std::min(N, (nb + 63) / 64 * 64);
    float* wf = Workspace(ctx, nb * K);
    for (int64_t n0 = 0; n0 < N; n0 += nb) {
      const int64_t cur = std::min(nb, N - n0);
      WidenRows(*ctx.pool, W, n0, cur, K, wf);
      GemmF32Block(ctx, M, cur, K, x, wf, y + n0, N);
    }
  }
  if (bias && bias->Valid()) {
    const Tensor& b = *bias;
    ctx.pool->ParallelFor(M, 16, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t n = 0; n < N; ++n) y[r * N + n] += b.At(n);
    });
  }
}

void SgemmNT(GemmContext& ctx, int64_t M, int64_t N, int64_t K, const float* A, const float* B, float* C) {
  GemmF32Block(ctx, M, N, K, A, B, C, N);
}

}  // namespace starkv::cpu
