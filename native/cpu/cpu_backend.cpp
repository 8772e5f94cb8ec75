// CpuBackend: forwards each op to its CPU kernel with the model's pool and memory account.
#include "cpu/cpu_backend.h"

#include <algorithm>
#include <cstring>

#include "cpu/attention.h"
#include "cpu/pointwise.h"
#include "cpu/sample.h"

namespace starkv::cpu {

std::string SimdSummary() {
  std::string s;
  auto add = [&](const char* f) { s += s.empty() ? f : std::string("+") + f; };
  (void)add;
#if defined(__AVX512F__)
  add("avx512f");
#endif
#if defined(__AVX512BW__)
  add("avx512bw");
#endif
#if defined(__AVX512BF16__)
  add("avx512bf16");
#endif
#if defined(__AVX2__) && !defined(__AVX512F__)
  add("avx2");
#endif
#if defined(__FMA__)
  add("fma");
#endif
#if defined(__F16C__)
  add("f16c");
#endif
  return s.empty() ? "scalar" : s;
}

CpuBackend::CpuBackend(MemoryAccount* account, const CpuOptions& opt) : account_(account), pool_(opt.threads) {
  gemm_.pool = &pool_;
  gemm_.account = account_;
  gemm_.workspace = &workspace_;
  gemm_.large_m = opt.large_m;
  gemm_.use_dnnl = opt.use_dnnl && HaveDnnl();
  gemm_.bf16 = ResolveCpuMatmul(opt.matmul, gemm_.use_dnnl);
}

std::string CpuBackend::GemmName() const {
  if (!gemm_.use_dnnl) return "builtin";
  return gemm_.bf16 ? "onednn (bf16 weights: prefill matmuls and attention bf16 x bf16, fp32 accumulation)" : "onednn";
}
std::string CpuBackend::SimdName() const { return SimdSummary(); }

Buffer CpuBackend::Alloc(MemCategory cat, int64_t floats) { return Floats(account_, cat, floats); }
void CpuBackend::Upload(const void* host, size_t bytes, void* dst) {
  if (bytes) std::memcpy(dst, host, bytes);
}
void CpuBackend::Download(const void* src, size_t bytes, void* host) {
  if (bytes) std::memcpy(host, src, bytes);
}
void CpuBackend::CopyRows(const float* src, int64_t ld_src, const int64_t* src_rows, float* dst, int64_t ld_dst,
                          const int64_t* dst_rows, int64_t n, int64_t width) {
  const OpProfile::Scope prof(&profile_, "copy_rows");
  pool_.ParallelFor(n, std::max<int64_t>(1, (int64_t(1) << 16) / std::max<int64_t>(1, width)), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      std::memcpy(dst + (dst_rows ? dst_rows[i] : i) * ld_dst, src + (src_rows ? src_rows[i] : i) * ld_src,
                  sizeof(float) * static_cast<size_t>(width));
  });
}

void CpuBackend::MatMul(const float* x, int64_t M, const Tensor& W, const Tensor* bias, float* y) {
  const OpProfile::Scope prof(&profile_, MatMulOpName(M));
  cpu::MatMul(gemm_, x, M, W, bias, y);
}
void CpuBackend::RmsNorm(const float* x, int64_t M, int64_t D, const Tensor& w, float eps, float* y) {
  const OpProfile::Scope prof(&profile_, "rms_norm");
  cpu::RmsNorm(pool_, x, M, D, w, eps, y);
}
void CpuBackend::LayerNorm(const float* x, int64_t M, int64_t D, const Tensor& w, const Tensor& b, float eps, float* y) {
  const OpProfile::Scope prof(&profile_, "layer_norm");
  cpu::LayerNorm(pool_, x, M, D, w, b, eps, y);
}
void CpuBackend::Rotary(float* x, int64_t n, int64_t row, int heads, int hd, const float* cos, const float* sin) {
  const OpProfile::Scope prof(&profile_, "rotary");
  cpu::Rotary(pool_, x, n, row, heads, hd, cos, sin);
}
void CpuBackend::Attention(const AttnArgs& a) {
  const OpProfile::Scope prof(&profile_, AttentionOpName(a.n_q));
  cpu::Attention(pool_, account_, a, gemm_.use_dnnl, gemm_.bf16 && a.bf16_weights, &attn_kv_);
}
void CpuBackend::GatedAct(Act act, const float* gate, const float* up, int64_t n, float* out) {
  const OpProfile::Scope prof(&profile_, "gated_act");
  cpu::GatedAct(pool_, act, gate, up, n, out);
}
void CpuBackend::Activation(Act act, float* x, int64_t n) {
  const OpProfile::Scope prof(&profile_, "activation");
  cpu::Activation(pool_, act, x, n);
}
void CpuBackend::Add(float* y, const float* x, int64_t n) {
  const OpProfile::Scope prof(&profile_, "add");
  cpu::Add(pool_, y, x, n);
}
void CpuBackend::RowNorms(const float* x, int64_t rows, int64_t width, float* y) {
  const OpProfile::Scope prof(&profile_, "row_norms");
  cpu::RowNorms(pool_, x, rows, width, y);
}
void CpuBackend::GatherRows(const Tensor& table, const int32_t* ids, int64_t n, float* out) {
  const OpProfile::Scope prof(&profile_, "gather_rows");
  cpu::GatherRows(pool_, table, ids, n, out);
}
int32_t CpuBackend::Sample(float* logits, int64_t n, const SampleParams& p, std::mt19937_64& rng) {
  const OpProfile::Scope prof(&profile_, "sample");
  return cpu::Sample(logits, n, p, rng);
}

}  // namespace starkv::cpu
