// sgemm and read-bandwidth measurements.
#include "cpu/bench.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <chrono>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/memory.h"
#include "core/thread_pool.h"
#include "cpu/attention.h"
#include "cpu/gemm.h"
#include "cpu/simd.h"

#if defined(STARKV_HAVE_DNNL)
#include <dnnl.h>

#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace starkv::cpu {
namespace {

double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// OpenBLAS's sgemm (Debian: libopenblas0-pthread), loaded at run time so that the engine never depends
// on it. OpenBLAS 0.3.21 takes an AVX-512 AMD CPU for "Prescott" (5-6x slower) unless OPENBLAS_CORETYPE
// names the core before the library loads, so it is set here (unless the user set it) when the CPU has
// AVX-512. Returns GFLOP/s of C[M,N] = A[M,K] B[K,N] (row-major), or 0 with *why when unavailable.
double OpenBlasGflops(int64_t M, int64_t N, int64_t K, const float* a, const float* b, float* c, int reps, int threads,
                      std::string* core, std::string* why) {
#if defined(__AVX512F__)
  setenv("OPENBLAS_CORETYPE", "SkylakeX", 0);
#endif
  void* lib = nullptr;
  for (const char* name : {"libopenblas.so.0", "libopenblasp.so.0", "libopenblas.so"})
    if ((lib = dlopen(name, RTLD_NOW | RTLD_LOCAL)) != nullptr) break;
  if (!lib) {
    *why = "libopenblas.so.0 not found (apt install libopenblas0-pthread)";
    return 0;
  }
  // cblas_sgemm(order, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc): CBLAS's C ABI,
  // with its enum values RowMajor = 101, NoTrans = 111.
  using Sgemm = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*, int);
  using SetThreads = void (*)(int);
  using CoreName = char* (*)();
  const auto sgemm = reinterpret_cast<Sgemm>(dlsym(lib, "cblas_sgemm"));
  const auto set_threads = reinterpret_cast<SetThreads>(dlsym(lib, "openblas_set_num_threads"));
  const auto core_name = reinterpret_cast<CoreName>(dlsym(lib, "openblas_get_corename"));
  if (!sgemm) {
    *why = "the OpenBLAS library has no cblas_sgemm";
    return 0;
  }
  if (set_threads) set_threads(threads);
  if (core_name) *core = core_name();
  auto run = [&] {
    sgemm(101, 111, 111, static_cast<int>(M), static_cast<int>(N), static_cast<int>(K), 1.0f, a, static_cast<int>(K), b,
          static_cast<int>(N), 0.0f, c, static_cast<int>(N));
  };
  run();  // warm-up (thread start)
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    run();
    best = std::min(best, Seconds(t0));
  }
  return 2.0 * M * N * K / best / 1e9;
}

}  // namespace

BenchLimits MeasureLimits(int64_t M, int64_t N, int64_t K, int64_t bytes, int reps, int threads, int64_t attn_tokens) {
  if (M <= 0 || N <= 0 || K <= 0 || M > 65536 || N > 65536 || K > 65536)
    throw Error("benchLimits: gemmM, gemmN, gemmK must be in [1, 65536]");
  if (bytes < 4096 || bytes > (int64_t(1) << 36)) throw Error("benchLimits: bandwidthBytes must be in [4096, 2^36]");
  if (reps <= 0 || reps > 1000) throw Error("benchLimits: reps must be in [1, 1000]");
  if (attn_tokens < 0 || attn_tokens > 65536) throw Error("benchLimits: attnTokens must be in [0, 65536]");
  MemoryAccount account;
  ThreadPool pool(threads);
  Buffer ws;
  GemmContext ctx;
  ctx.pool = &pool;
  ctx.account = &account;
  ctx.workspace = &ws;
  BenchLimits r;
  {
    Buffer a = Floats(&account, MemCategory::Workspace, M * K);
    Buffer b = Floats(&account, MemCategory::Workspace, N * K);
    Buffer c = Floats(&account, MemCategory::Workspace, M * N);
    for (int64_t i = 0; i < M * K; ++i) a.f()[i] = static_cast<float>((i * 7) % 13) * 0.01f;
    for (int64_t i = 0; i < N * K; ++i) b.f()[i] = static_cast<float>((i * 5) % 11) * 0.01f;
    // oneDNN sgemm with its own (OpenMP) threads, B transposed and not (or, without oneDNN, our own
    // fp32 GEMM); then OpenBLAS with the core type set right. The peak is the best of them.
    double best = 1e30;
    for (bool trans : {true, false}) {
      auto run = [&] {
#if defined(STARKV_HAVE_DNNL)
        SetDnnlThreads(pool.size());
        if (!trans) {
          dnnl_sgemm('N', 'N', M, N, K, 1.0f, a.f(), K, b.f(), N, 0.0f, c.f(), N);
          return;
        }
#endif
        (void)trans;
        SgemmNT(ctx, M, N, K, a.f(), b.f(), c.f());
      };
      run();  // warm-up
      for (int i = 0; i < reps; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        run();
        best = std::min(best, Seconds(t0));
      }
    }
    r.own_sgemm_gflops = 2.0 * M * N * K / best / 1e9;
    r.openblas_gflops = OpenBlasGflops(M, N, K, a.f(), b.f(), c.f(), reps, pool.size(), &r.openblas_core,
                                       &r.openblas_note);
    r.sgemm_gflops = std::max(r.own_sgemm_gflops, r.openblas_gflops);
    // The engine's prefill path as the models call it: x fp32, W bf16 [N, K] (widened block by block).
    std::vector<uint16_t> wb(static_cast<size_t>(N * K));
    for (int64_t i = 0; i < N * K; ++i) {
      float v = b.f()[i];
      uint32_t u;
      std::memcpy(&u, &v, 4);
      wb[static_cast<size_t>(i)] = static_cast<uint16_t>(u >> 16);
    }
    Tensor W;
    W.dtype = DType::BF16;
    W.ndim = 2;
    W.shape[0] = N;
    W.shape[1] = K;
    W.data = wb.data();
    double best_e = 1e30;
    MatMul(ctx, a.f(), M, W, nullptr, c.f());  // warm-up
    for (int i = 0; i < reps; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      MatMul(ctx, a.f(), M, W, nullptr, c.f());
      best_e = std::min(best_e, Seconds(t0));
    }
    r.engine_bf16_gflops = 2.0 * M * N * K / best_e / 1e9;
#if defined(STARKV_HAVE_DNNL)
    if (Bf16MatmulFast(nullptr)) {
      // The bf16 limit: oneDNN's bf16 matmul over the whole product with its own OpenMP threads.
      using dt = dnnl::memory::data_type;
      const dnnl::engine eng(dnnl::engine::kind::cpu, 0);
      dnnl::stream st(eng);
      SetDnnlThreads(pool.size());
      const dnnl::memory::desc ad({M, K}, dt::bf16, dnnl::memory::dims{K, 1}), bd({K, N}, dt::bf16, dnnl::memory::dims{1, K}),
          cd({M, N}, dt::f32, dnnl::memory::dims{N, 1});
      const dnnl::matmul prim(dnnl::matmul::primitive_desc(dnnl::matmul::desc(ad, bd, cd), eng));
      // x in bf16 in an engine buffer (huge pages, as the engine's own converted x): AMX tile loads touch
      // one 4 KiB page per row of a 2048-wide matrix, and malloc's 4 KiB pages measured ~20 % slower.
      Buffer abuf(&account, MemCategory::Workspace, sizeof(uint16_t) * static_cast<size_t>(M * K));
      uint16_t* ab = static_cast<uint16_t*>(abuf.data());
      F32ToBf16Row(a.f(), ab, M * K);
      dnnl::memory am(ad, eng, ab), bm(bd, eng, wb.data()), cm(cd, eng, c.f());
      double best_b = 1e30;
      for (int i = 0; i <= reps; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        prim.execute(st, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
        st.wait();
        if (i > 0) best_b = std::min(best_b, Seconds(t0));  // first run warms up
      }
      r.bf16_team_gflops = 2.0 * M * N * K / best_b / 1e9;
      // Split: the product cut as the engine cuts it (blocks of block_rows weight rows spread over the
      // pool threads, block_m rows of x at a time), each piece into the thread's own dense tile, which is
      // overwritten: the kernel's rate without the engine's conversion of x or copies of the tiles.
      const int64_t nb = ctx.block_rows, slab = ctx.block_m, blocks = N / nb;
      Buffer tiles = Floats(&account, MemCategory::Workspace, pool.size() * slab * nb);
      double best_s = 1e30;
      for (int i = 0; i <= reps; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        pool.Run(pool.size(), [&](int t, int nt) {
          for (int64_t m0 = 0; m0 < M; m0 += slab)  // the engine's order: slabs outer, blocks inner
            for (int64_t blk = blocks * t / nt; blk < blocks * (t + 1) / nt; ++blk)
              Bf16GemmSingle(std::min(slab, M - m0), nb, K, ab + m0 * K, K, wb.data() + blk * nb * K, K, true,
                             tiles.f() + t * slab * nb, nb);
        });
        if (i > 0) best_s = std::min(best_s, Seconds(t0));
      }
      r.bf16_split_gflops = 2.0 * M * blocks * nb * K / best_s / 1e9;
      r.bf16_gemm_gflops = std::max(r.bf16_team_gflops, r.bf16_split_gflops);
      ctx.bf16 = true;
      double best_x = 1e30;
      MatMul(ctx, a.f(), M, W, nullptr, c.f());
      for (int i = 0; i < reps; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        MatMul(ctx, a.f(), M, W, nullptr, c.f());
        best_x = std::min(best_x, Seconds(t0));
      }
      ctx.bf16 = false;
      r.engine_bf16x_gflops = 2.0 * M * N * K / best_x / 1e9;
    }
#endif
  }
  if (attn_tokens > 0) {
    // One vision block's attention as the engine runs it: fused q|k|v rows, one segment (full attention).
    const int64_t n = attn_tokens, heads = 16, hd = 80, C = heads * hd;
    Buffer qkv = Floats(&account, MemCategory::Workspace, n * 3 * C), out = Floats(&account, MemCategory::Workspace, n * C);
    for (int64_t i = 0; i < n * 3 * C; ++i) qkv.f()[i] = static_cast<float>((i * 7) % 13 - 6) * 0.05f;
    const int64_t seg[2] = {0, n};
    AttnArgs at;
    at.q = qkv.f();
    at.k = qkv.f() + C;
    at.v = qkv.f() + 2 * C;
    at.q_row = at.k_row = at.v_row = 3 * C;
    at.k_head = at.v_head = hd;
    at.out = out.f();
    at.out_row = C;
    at.n_q = at.n_kv = n;
    at.heads = at.kv_heads = static_cast<int>(heads);
    at.hd = static_cast<int>(hd);
    at.scale = 1.0f / std::sqrt(static_cast<float>(hd));
    at.segments = seg;
    at.n_segments = 1;
    const double flops = 4.0 * n * n * hd * heads;
    auto time = [&](bool bf16) {
      double best = 1e30;
      for (int i = 0; i <= reps; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        Attention(pool, &account, at, ctx.use_dnnl, bf16);
        if (i > 0) best = std::min(best, Seconds(t0));  // first run warms up
      }
      return flops / best / 1e9;
    };
    r.engine_attn_gflops = time(false);
    if (Bf16MatmulFast(nullptr)) r.engine_attn_bf16_gflops = time(true);
  }
  {
    const int64_t n = bytes / 4;
    Buffer buf = Floats(&account, MemCategory::Workspace, n);
    for (int64_t i = 0; i < n; i += 1024) buf.f()[i] = 1.0f;
    std::vector<float> sink(static_cast<size_t>(pool.size()), 0.0f);
    double best = 1e30;
    for (int i = 0; i <= reps; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      pool.Run(pool.size(), [&](int t, int nt) {
        const int64_t b = n * t / nt / 16 * 16, e = t + 1 == nt ? n : n * (t + 1) / nt / 16 * 16;
        const float* p = buf.f();
        float s = 0;
#if defined(__AVX512F__)
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int64_t k = b;
        for (; k + 64 <= e; k += 64) {
          a0 = _mm512_add_ps(a0, _mm512_loadu_ps(p + k));
          a1 = _mm512_add_ps(a1, _mm512_loadu_ps(p + k + 16));
          a2 = _mm512_add_ps(a2, _mm512_loadu_ps(p + k + 32));
          a3 = _mm512_add_ps(a3, _mm512_loadu_ps(p + k + 48));
        }
        s = Hsum(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
        for (; k < e; ++k) s += p[k];
#elif defined(STARKV_AVX2)
        // 8 accumulators of 8 lanes: a scalar sum is one dependent add per element and measured ~8 GB/s,
        // the add latency, not the memory
        __m256 a[8];
        for (auto& v : a) v = _mm256_setzero_ps();
        int64_t k = b;
        for (; k + 64 <= e; k += 64)
          for (int j = 0; j < 8; ++j) a[j] = _mm256_add_ps(a[j], _mm256_loadu_ps(p + k + 8 * j));
        for (int j = 1; j < 8; ++j) a[0] = _mm256_add_ps(a[0], a[j]);
        s = Hsum8(a[0]);
        for (; k < e; ++k) s += p[k];
#else
        for (int64_t k = b; k < e; ++k) s += p[k];
#endif
        sink[t] += s;
      });
      if (i > 0) best = std::min(best, Seconds(t0));  // first pass warms up
    }
    r.bandwidth_gbs = static_cast<double>(n) * 4.0 / best / 1e9;
    if (sink[0] < 0) r.bandwidth_gbs += 0;  // keep the sums alive
  }
  return r;
}

}  // namespace starkv::cpu
