// Logic check of kernels/attention.cu, kernels/pointwise.cu and the GEMV / fp32 GEMM of kernels/gemm.cu
// under the host emulation of CUDA blocks and threads (kernels/kv/emu/cuda_runtime.h; run.sh here):
// each launcher against the CPU backend on the same inputs. Not a GPU run: it checks indexing, masks,
// splits, barriers and reductions, not the device's memory model, math library or speed. The wmma
// tensor-core GEMM and cuBLAS are not emulated.
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>
#include "core/backend.h"
#include "core/dtype.h"
#include "cpu/cpu_backend.h"
typedef struct CUstream_st* cudaStream_t;
namespace starkv::cuda {
void LaunchRmsNorm(cudaStream_t s, const float* x, int64_t M, int64_t D, const void* w, DType wt, float eps, float* y);
void LaunchLayerNorm(cudaStream_t s, const float* x, int64_t M, int64_t D, const void* w, DType wt, const void* b, DType bt, float eps, float* y);
void LaunchRotary(cudaStream_t s, float* x, int64_t n, int64_t row, int heads, int hd, const float* cos, const float* sin);
void LaunchGatedAct(cudaStream_t s, Act act, const float* gate, const float* up, int64_t n, float* out);
void LaunchGatherRows(cudaStream_t s, const void* table, DType t, int64_t D, const int32_t* ids, int64_t n, float* out);
void LaunchCopyRows(cudaStream_t s, const float* src, int64_t ld_src, const int64_t* src_rows, float* dst, int64_t ld_dst, const int64_t* dst_rows, int64_t n, int64_t width);
void LaunchAddBias(cudaStream_t s, float* y, int64_t M, int64_t N, const void* bias, DType bt);
void LaunchConvert(cudaStream_t s, const float* x, int64_t n, DType to, void* out);
void LaunchOwnGemm(cudaStream_t s, const float* x, int64_t M, int64_t K, const void* W, DType wt, int64_t N, float* y);
void LaunchGemv(cudaStream_t s, const float* x, int64_t M, int64_t K, const void* W, DType wt, int64_t N, float* y);
int64_t AttentionScratchBytes(const AttnArgs& a);
void LaunchAttention(cudaStream_t s, const AttnArgs& a, const int64_t* dev_segments, void* scratch);
}
using namespace starkv;
std::mt19937 rng(5);
std::vector<float> R(int64_t n) { std::normal_distribution<float> d; std::vector<float> v(n); for (auto& x : v) x = d(rng); return v; }
int fails = 0, cases = 0;
void Cmp(const char* what, const std::vector<float>& a, const std::vector<float>& b, double thr) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) { num += double(a[i] - b[i]) * (a[i] - b[i]); den += double(b[i]) * b[i]; }
  const double e = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  ++cases;
  const bool ok = e <= thr && !std::isnan(e);
  if (!ok) ++fails;
  std::printf("%-60s emu vs cpu %.2e (<= %.0e) %s\n", what, e, thr, ok ? "ok" : "FAIL");
}
int main() {
  MemoryAccount acc; cpu::CpuOptions o; o.threads = 1; cpu::CpuBackend cpu(&acc, o);
  // attention: store layout
  struct AC { int64_t nq, nkv; int kvh, ratio, hd; };
  for (AC c : {AC{17,17,2,1,64}, AC{17,17,2,7,80}, AC{1,33,2,7,128}, AC{9,59,2,2,64}, AC{1,600,2,1,64}, AC{1,1100,2,7,128},
               AC{5,777,2,2,80}, AC{3,203,2,6,128}, AC{40,40,1,1,160}, AC{2,1030,1,9,64}}) {
    const int heads = c.kvh * c.ratio; const int64_t cap = c.nkv + 3, qd = int64_t(heads) * c.hd;
    auto q = R(c.nq * qd), k = R(c.kvh * cap * c.hd), v = R(c.kvh * cap * c.hd);
    std::vector<float> o1(c.nq * qd), o2(c.nq * qd);
    AttnArgs a; a.q = q.data(); a.q_row = qd; a.k = k.data(); a.k_row = c.hd; a.k_head = cap * c.hd; a.v = v.data(); a.v_row = c.hd; a.v_head = cap * c.hd;
    a.out_row = qd; a.n_q = c.nq; a.n_kv = c.nkv; a.heads = heads; a.kv_heads = c.kvh; a.hd = c.hd; a.scale = 1.0f / std::sqrt(float(c.hd));
    a.out = o1.data(); cpu.Attention(a);
    a.out = o2.data();
    std::vector<float> part(std::max<int64_t>(1, cuda::AttentionScratchBytes(a) / 4));
    cuda::LaunchAttention(nullptr, a, nullptr, part.data());
    char b[128]; std::snprintf(b, sizeof b, "attention nq=%lld nkv=%lld heads=%d/%d hd=%d split=%lld", (long long)c.nq, (long long)c.nkv, heads, c.kvh, c.hd, (long long)cuda::AttentionScratchBytes(a) / 4);
    Cmp(b, o2, o1, 1e-5);
  }
  // attention: vision layout with segments
  for (int hd : {80, 64}) {
    const int heads = 2; const int64_t n = 70, C = heads * hd;
    std::vector<int64_t> seg = {0, 16, 40, 41, 70};
    auto qkv = R(n * 3 * C); std::vector<float> o1(n * C), o2(n * C);
    AttnArgs a; a.q = qkv.data(); a.q_row = 3 * C; a.k = qkv.data() + C; a.k_row = 3 * C; a.k_head = hd; a.v = qkv.data() + 2 * C; a.v_row = 3 * C; a.v_head = hd;
    a.out_row = C; a.n_q = a.n_kv = n; a.heads = a.kv_heads = heads; a.hd = hd; a.scale = 0.1f; a.segments = seg.data(); a.n_segments = 4;
    a.out = o1.data(); cpu.Attention(a); a.out = o2.data();
    cuda::LaunchAttention(nullptr, a, seg.data(), nullptr);
    Cmp(hd == 80 ? "attention segments hd=80" : "attention segments hd=64", o2, o1, 1e-5);
  }
  // norms
  for (int64_t D : {64, 1000, 1283}) {
    const int64_t M = 3; auto x = R(M * D), w = R(D), bb = R(D);
    Tensor W; W.dtype = DType::F32; W.ndim = 1; W.shape[0] = D; W.data = w.data();
    Tensor B = W; B.data = bb.data();
    std::vector<float> y1(M * D), y2(M * D);
    cpu.RmsNorm(x.data(), M, D, W, 1e-6f, y1.data()); cuda::LaunchRmsNorm(nullptr, x.data(), M, D, w.data(), DType::F32, 1e-6f, y2.data());
    Cmp("rmsnorm", y2, y1, 1e-6);
    cpu.LayerNorm(x.data(), M, D, W, B, 1e-6f, y1.data()); cuda::LaunchLayerNorm(nullptr, x.data(), M, D, w.data(), DType::F32, bb.data(), DType::F32, 1e-6f, y2.data());
    Cmp("layernorm", y2, y1, 1e-6);
  }
  { // rotary
    const int64_t n = 7, heads = 3, hd = 80, row = heads * hd + 17; auto x = R(n * row), cs = R(n * hd / 2), sn = R(n * hd / 2);
    auto x2 = x; cpu.Rotary(x.data(), n, row, heads, hd, cs.data(), sn.data()); cuda::LaunchRotary(nullptr, x2.data(), n, row, heads, hd, cs.data(), sn.data());
    Cmp("rotary", x2, x, 1e-6);
  }
  for (Act act : {Act::Silu, Act::GeluErf, Act::QuickGelu}) {
    auto g = R(1000), u = R(1000); std::vector<float> o1(1000), o2(1000);
    cpu.GatedAct(act, g.data(), u.data(), 1000, o1.data()); cuda::LaunchGatedAct(nullptr, act, g.data(), u.data(), 1000, o2.data());
    Cmp("gated_act", o2, o1, 1e-6);
  }
  { // gather bf16
    const int64_t D = 130; std::vector<uint16_t> t(50 * D); for (auto& h : t) h = F32ToBf16(R(1)[0]);
    Tensor T; T.dtype = DType::BF16; T.ndim = 2; T.shape[0] = 50; T.shape[1] = D; T.data = t.data();
    std::vector<int32_t> ids = {3, 0, 49, 3}; std::vector<float> o1(4 * D), o2(4 * D);
    cpu.GatherRows(T, ids.data(), 4, o1.data()); cuda::LaunchGatherRows(nullptr, t.data(), DType::BF16, D, ids.data(), 4, o2.data());
    Cmp("gather_rows bf16", o2, o1, 0);
  }
  { // copy rows both
    auto src = R(13 * 37), d1 = R(13 * 41); auto d2 = d1; std::vector<int64_t> si = {12, 0, 5, 5, 7, 1}, di = {3, 11, 0, 9, 2, 6};
    cpu.CopyRows(src.data(), 37, si.data(), d1.data(), 41, di.data(), 6, 29); cuda::LaunchCopyRows(nullptr, src.data(), 37, si.data(), d2.data(), 41, di.data(), 6, 29);
    Cmp("copy_rows gather+scatter", d2, d1, 0);
  }
  {
  std::normal_distribution<float> nd;
  struct C { int64_t M, N, K; };
  for (DType dt : {DType::BF16, DType::F16, DType::F32})
    for (C c : {C{1, 3, 17}, C{2, 33, 128}, C{4, 70, 520}, C{3, 9, 136}, C{1, 40, 1024}, C{17, 70, 33}, C{70, 130, 96}}) {
      if (dt != DType::F32 && c.M > 4) continue;  // the wmma path is not emulated
      std::vector<float> x(c.M * c.K), wf(c.N * c.K); std::vector<uint16_t> wh(c.N * c.K);
      for (auto& v : x) v = nd(rng);
      for (int64_t i = 0; i < c.N * c.K; ++i) { float v = nd(rng); if (dt == DType::BF16) { wh[i] = F32ToBf16(v); } else if (dt == DType::F16) { wh[i] = 0x3c00 ^ (i % 7) ; } wf[i] = v; }
      Tensor W; W.dtype = dt; W.ndim = 2; W.shape[0] = c.N; W.shape[1] = c.K; W.data = dt == DType::F32 ? (const void*)wf.data() : (const void*)wh.data();
      std::vector<float> y1(c.M * c.N), y2(c.M * c.N);
      cpu.MatMul(x.data(), c.M, W, nullptr, y1.data());
      if (c.M <= 4) cuda::LaunchGemv(nullptr, x.data(), c.M, c.K, W.data, dt, c.N, y2.data());
      else cuda::LaunchOwnGemm(nullptr, x.data(), c.M, c.K, W.data, dt, c.N, y2.data());
      double num = 0, den = 0; for (size_t i = 0; i < y1.size(); ++i) { num += double(y1[i] - y2[i]) * (y1[i] - y2[i]); den += double(y1[i]) * y1[i]; }
      const double e = std::sqrt(num / den); ++cases; const bool ok = e <= 2e-6; if (!ok) ++fails;
      std::printf("%s %s M=%lld N=%lld K=%lld  emu vs cpu %.2e %s\n", c.M <= 4 ? "gemv" : "f32 gemm", DTypeName(dt), (long long)c.M, (long long)c.N, (long long)c.K, e, ok ? "ok" : "FAIL");
    }
  }
  std::printf("emulation: %d cases, %d failed\n", cases, fails);
  return fails ? 1 : 0;
}
