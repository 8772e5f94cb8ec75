// Matmul dispatch: decode tiles, weight-block widening, oneDNN or built-in GEMM.
#include "cpu/gemm.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "cpu/dot_tile.h"
#include "cpu/transpose.h"

#if defined(STARKV_HAVE_DNNL)
#include <dnnl.h>

#include <array>
#include <map>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace starkv::cpu {
namespace {

#if defined(STARKV_HAVE_DNNL)
const dnnl::engine& CpuEngine() {
  static const dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

// C[M,N] (row stride ldc) = A[M,K] (row stride lda) . op(B), A and B bf16: B [N][K] (weight rows in
// place, trans_b) or B [K][N], row stride ldb.
dnnl::matmul::primitive_desc Bf16Desc(const std::array<int64_t, 7>& s) {
  using dt = dnnl::memory::data_type;
  const int64_t M = s[0], N = s[1], K = s[2], lda = s[3], ldb = s[4], ldc = s[5];
  const bool trans_b = s[6] != 0;
  const dnnl::memory::desc a({M, K}, dt::bf16, dnnl::memory::dims{lda, 1});
  const dnnl::memory::desc b({K, N}, dt::bf16, trans_b ? dnnl::memory::dims{1, ldb} : dnnl::memory::dims{ldb, 1});
  const dnnl::memory::desc c({M, N}, dt::f32, dnnl::memory::dims{ldc, 1});
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // per-thread scratch: safe whatever the build
  return dnnl::matmul::primitive_desc(dnnl::matmul::desc(a, b, c), attr, CpuEngine());
}

std::array<int64_t, 7> Bf16Key(int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb, bool trans_b, int64_t ldc) {
  return {M, N, K, lda, ldb, ldc, trans_b ? 1 : 0};
}
#endif
}  // namespace

// One thread's bf16 GEMM with oneDNN single-threaded on it. Primitives are made per shape and kept
// per thread (a prefill has a handful of shapes; the bound keeps a long episode's remainders in check).
void Bf16GemmSingle(int64_t M, int64_t N, int64_t K, const uint16_t* A, int64_t lda, const uint16_t* B, int64_t ldb,
                    bool trans_b, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
#if defined(STARKV_HAVE_DNNL)
  struct Entry {
    dnnl::matmul prim;
    dnnl::memory::desc a, b, c, scratch;
    std::vector<uint8_t> scratch_bytes;
  };
  thread_local std::map<std::array<int64_t, 7>, std::unique_ptr<Entry>> cache;
  thread_local std::unique_ptr<dnnl::stream> stream;
  try {
    SetDnnlThreads(1);
    if (!stream) stream = std::make_unique<dnnl::stream>(CpuEngine());
    const auto key = Bf16Key(M, N, K, lda, ldb, trans_b, ldc);
    auto it = cache.find(key);
    if (it == cache.end()) {
      if (cache.size() >= 256) cache.clear();
      auto e = std::make_unique<Entry>();
      const auto pd = Bf16Desc(key);
      e->prim = dnnl::matmul(pd);
      e->a = pd.src_desc();
      e->b = pd.weights_desc();
      e->c = pd.dst_desc();
      e->scratch = pd.scratchpad_desc();
      e->scratch_bytes.resize(e->scratch.get_size());
      it = cache.emplace(key, std::move(e)).first;
    }
    Entry& e = *it->second;
    const dnnl::engine& eng = CpuEngine();
    dnnl::memory am(e.a, eng, const_cast<uint16_t*>(A)), bm(e.b, eng, const_cast<uint16_t*>(B)), cm(e.c, eng, C),
        sm(e.scratch, eng, e.scratch_bytes.data());
    e.prim.execute(*stream, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}, {DNNL_ARG_SCRATCHPAD, sm}});
    stream->wait();
  } catch (const dnnl::error& err) {
    throw Error(std::string("oneDNN bf16 matmul failed (") + std::to_string(M) + "x" + std::to_string(N) + "x" +
                std::to_string(K) + "): " + err.what());
  }
#else
  throw Error("bf16 GEMM needs oneDNN (this build has none)");
#endif
}

namespace {

// Rows [n0, n1) of W times all M rows of x into y (row stride ldy), W read in its own dtype.
template <DType WD>
void DotRange(const float* x, int64_t M, int64_t K, const void* w, int64_t n0, int64_t n1, float* y, int64_t ldy) {
  const size_t esz = DTypeSize(WD);
  const char* wb = static_cast<const char*>(w);
  if (M == 1) {
    DotRow<WD>(x, wb + n0 * K * esz, K, K, y + n0, n1 - n0);
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

// dst[r][k] = fp32(W[n0 + r][k]) for r < nb (calling thread).
void WidenRows(const Tensor& W, int64_t n0, int64_t nb, int64_t K, float* dst) {
  const DType t = W.dtype;
  for (int64_t r = 0; r < nb; ++r) {
    const uint16_t* s = static_cast<const uint16_t*>(W.Row(n0 + r));
    float* d = dst + r * K;
    int64_t k = 0;
#if defined(__AVX512F__)
    for (; k + 16 <= K; k += 16) _mm512_storeu_ps(d + k, Load16(s + k, t));
#elif defined(STARKV_AVX2)
    for (; k + 8 <= K; k += 8) _mm256_storeu_ps(d + k, Load8(s + k, t));
#endif
    for (; k < K; ++k) d[k] = t == DType::BF16 ? Bf16ToF32(s[k]) : F16ToF32(s[k]);
  }
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

// What oneDNN's bf16 matmul runs here (probed once): its AMX kernel for a dense destination (amx), and
// whether a column block of a wider output gets another kernel (strided_differs). oneDNN 2.6 takes AMX
// only for a dense destination and its older AVX-512 bf16 gemm for a strided one (1.3-1.8x slower per
// call on a Xeon with AMX, 2026-12-03); without AMX both take the same kernel.
struct Bf16Kernels {
  bool amx = false, strided_differs = false;
};
static const Bf16Kernels& Bf16KernelProbe() {
  static const Bf16Kernels k = [] {
    Bf16Kernels r;
#if defined(STARKV_HAVE_DNNL)
    try {
      SetDnnlThreads(1);
      const std::string dense = Bf16Desc(Bf16Key(256, 128, 256, 256, 256, true, 128)).impl_info_str();
      const std::string strided = Bf16Desc(Bf16Key(256, 128, 256, 256, 256, true, 1024)).impl_info_str();
      r.amx = dense.find("amx") != std::string::npos;
      r.strided_differs = dense != strided;
    } catch (const dnnl::error&) {
    }
#endif
    return r;
  }();
  return k;
}

// Slabs through a dense tile only where that reaches the AMX kernel: elsewhere the copy would only cost.
static bool Bf16DenseDstFaster() { return Bf16KernelProbe().amx && Bf16KernelProbe().strided_differs; }

int64_t Bf16PaddedK(int64_t k) { return Bf16KernelProbe().amx ? (k + 31) / 32 * 32 : k; }

bool Bf16MatmulFast(std::string* impl) {
#if defined(STARKV_HAVE_DNNL)
  static const std::pair<bool, std::string> probe = [] {
    try {
      SetDnnlThreads(1);
      const std::string name = Bf16Desc(Bf16Key(64, 64, 64, 64, 64, true, 64)).impl_info_str();
      const bool fast = name.find("ref") == std::string::npos &&
                        (name.find("bf16") != std::string::npos || name.find("amx") != std::string::npos);
      return std::make_pair(fast, name);
    } catch (const dnnl::error& e) {
      return std::make_pair(false, std::string("oneDNN has no bf16 matmul here: ") + e.what());
    }
  }();
  if (impl) *impl = probe.second;
  return probe.first;
#else
  if (impl) *impl = "built without oneDNN";
  return false;
#endif
}

bool ResolveCpuMatmul(const std::string& choice, bool use_dnnl) {
  if (choice != "auto" && choice != "fp32" && choice != "bf16")
    throw Error("cpuMatmul '" + choice + "' is not auto, fp32 or bf16");
  if (choice == "fp32") return false;
  std::string impl;
  const bool fast = use_dnnl && Bf16MatmulFast(&impl);
  if (choice == "bf16" && !fast)
    throw Error("cpuMatmul 'bf16' needs oneDNN's bf16 matmul on a CPU with AVX512-BF16 or AMX; here: " +
                (use_dnnl ? impl : std::string("oneDNN disabled")) + " (use 'auto' or 'fp32')");
  return fast;
}

void SetDnnlThreads(int n) {
  using Fn = void (*)(int);
  static const Fn fn = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));  // immutable once set
  if (fn) fn(std::max(1, n));
}

void MatMul(GemmContext& ctx, const float* x, int64_t M, const Tensor& W, const Tensor* bias, float* y) {
  const int64_t N = W.Rows(), K = W.Cols();
  if (M <= 0 || N <= 0) return;
  std::vector<float> bv;
  if (bias && bias->Valid()) {
    bv.resize(static_cast<size_t>(N));
    for (int64_t n = 0; n < N; ++n) bv[n] = bias->At(n);
  }
  bool bias_added = false;  // by the dense-tile copies below, instead of a pass of its own over y
#if defined(STARKV_HAVE_DNNL)
  if (ctx.bf16 && ctx.use_dnnl && W.dtype == DType::BF16 && M >= ctx.large_m) {
    // Prefill in bf16: x rounded to bf16 once (round to nearest even, as torch does), then blocks of
    // weight rows used in place, each multiplied by x in cache-sized slabs with fp32 accumulation.
    // Where oneDNN is faster into a dense destination (AMX), each slab goes through a per-thread dense
    // tile [block_m][nb] and is copied into its column block of y.
    const int64_t nb = ctx.block_rows;
    const int64_t blocks = (N + nb - 1) / nb;
    const int nt = static_cast<int>(std::min<int64_t>(ctx.pool->size(), blocks));
    const bool dense = blocks > 1 && Bf16DenseDstFaster();
    const int64_t xb_floats = ((M * K + 1) / 2 + 15) / 16 * 16, tile = std::min(ctx.block_m, M) * nb;
    float* ws = Workspace(ctx, xb_floats + (dense ? tile * nt : 0));
    uint16_t* xb = reinterpret_cast<uint16_t*>(ws);
    ctx.pool->ParallelFor(M, 8, [&](int64_t r0, int64_t r1) {
      F32ToBf16Row(x + r0 * K, xb + r0 * K, (r1 - r0) * K);
    });
    const uint16_t* wb = static_cast<const uint16_t*>(W.data);
    ctx.pool->Run(nt, [&](int t, int ntt) {
      float* dt = dense ? ws + xb_floats + tile * t : nullptr;
      // Slabs of x outer, this thread's weight blocks inner: a slab stays in cache while the blocks
      // stream past it (blocks outer re-read all of x once per block: 3.6x the traffic at 10k rows).
      for (int64_t m0 = 0; m0 < M; m0 += ctx.block_m) {
        const int64_t rows = std::min(ctx.block_m, M - m0);
        for (int64_t blk = blocks * t / ntt; blk < blocks * (t + 1) / ntt; ++blk) {
          const int64_t n0 = blk * nb, cur = std::min(nb, N - n0);
          if (!dense) {
            Bf16GemmSingle(rows, cur, K, xb + m0 * K, K, wb + n0 * K, K, true, y + m0 * N + n0, N);
            continue;
          }
          Bf16GemmSingle(rows, cur, K, xb + m0 * K, K, wb + n0 * K, K, true, dt, cur);
          for (int64_t r = 0; r < rows; ++r) {
            float* yr = y + (m0 + r) * N + n0;
            const float* tr = dt + r * cur;
            if (bv.empty()) {
              std::memcpy(yr, tr, static_cast<size_t>(cur) * sizeof(float));
              continue;
            }
            const float* br = bv.data() + n0;
            for (int64_t c = 0; c < cur; ++c) yr[c] = tr[c] + br[c];
          }
        }
      }
    });
    bias_added = dense;
  } else
#endif
  if (M < ctx.large_m) {
    // Decode: split the weight rows among threads; each thread streams its rows once.
    ctx.pool->ParallelFor(N, 32, [&](int64_t b, int64_t e) { DotRangeAny(W.dtype, x, M, K, W.data, b, e, y, N); });
  } else {
    // Prefill: fixed blocks of nb weight rows, spread over the pool; each block is widened to fp32
    // once (thread-local) and multiplied by all M rows with a single-threaded sgemm. No OpenMP team
    // competes with the pool, and each output block is computed the same way whatever the threads.
    const int64_t nb = ctx.block_rows;
    const int64_t blocks = (N + nb - 1) / nb;
    const int nt = static_cast<int>(std::min<int64_t>(ctx.pool->size(), blocks));
    // oneDNN: the block is widened transposed ([K][nb], an NN sgemm, ~12% faster than NT here).
    // Built-in: widened as rows (NT, the tile kernel); f32 rows are used in place.
    const bool dnnl = ctx.use_dnnl && HaveDnnl();
    const bool in_place = !dnnl && W.dtype == DType::F32;
    float* ws = in_place ? nullptr : Workspace(ctx, nb * K * nt);
    ctx.pool->Run(nt, [&](int t, int ntt) {
      float* wf = in_place ? nullptr : ws + nb * K * t;
      for (int64_t blk = blocks * t / ntt; blk < blocks * (t + 1) / ntt; ++blk) {
        const int64_t n0 = blk * nb, cur = std::min(nb, N - n0);
        if (dnnl) {
          WidenRowsTransposed(W, n0, cur, K, wf, cur);
          for (int64_t m0 = 0; m0 < M; m0 += ctx.block_m)  // rows of x in cache-sized slabs
            SgemmSingle(true, false, std::min(ctx.block_m, M - m0), cur, K, x + m0 * K, K, wf, cur, y + m0 * N + n0, N);
        } else {
          const float* b = in_place ? static_cast<const float*>(W.Row(n0)) : wf;
          if (!in_place) WidenRows(W, n0, cur, K, wf);
          SgemmSingle(false, true, M, cur, K, x, K, b, K, y + n0, N);
        }
      }
    });
  }
  if (!bv.empty() && !bias_added) {
    ctx.pool->ParallelFor(M, 16, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        float* yr = y + r * N;
        for (int64_t n = 0; n < N; ++n) yr[n] += bv[n];
      }
    });
  }
}

void SgemmSingle(bool use_dnnl, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
#if defined(STARKV_HAVE_DNNL)
  if (use_dnnl && K > 0) {
    SetDnnlThreads(1);
    const dnnl_status_t st = dnnl_sgemm('N', trans_b ? 'T' : 'N', M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc);
    if (st != dnnl_success) throw Error("oneDNN sgemm failed (status " + std::to_string(static_cast<int>(st)) + ")");
    return;
  }
#endif
  if (trans_b) {
    constexpr int MR = 4, NR = 4;
    for (int64_t n = 0; n < N; n += NR) {
      const int nr = static_cast<int>(std::min<int64_t>(NR, N - n));
      for (int64_t m = 0; m < M; m += MR) {
        const int mr = static_cast<int>(std::min<int64_t>(MR, M - m));
        DotTile<MR, NR, DType::F32>(A + m * lda, lda, B + n * ldb, ldb, K, C + m * ldc + n, ldc, mr, nr);
      }
    }
    return;
  }
  for (int64_t m = 0; m < M; ++m) {
    float* c = C + m * ldc;
    std::fill(c, c + N, 0.0f);
    for (int64_t k = 0; k < K; ++k) {
      const float a = A[m * lda + k];
      if (a == 0.0f) continue;
      const float* b = B + k * ldb;
      int64_t n = 0;
#if defined(__AVX512F__)
      const __m512 av = _mm512_set1_ps(a);
      for (; n + 16 <= N; n += 16) _mm512_storeu_ps(c + n, _mm512_fmadd_ps(av, _mm512_loadu_ps(b + n), _mm512_loadu_ps(c + n)));
#endif
      for (; n < N; ++n) c[n] += a * b[n];
    }
  }
}

void SgemmNT(GemmContext& ctx, int64_t M, int64_t N, int64_t K, const float* A, const float* B, float* C) {
  GemmF32Block(ctx, M, N, K, A, B, C, N);
}

}  // namespace starkv::cpu
