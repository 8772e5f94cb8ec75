// The CPU implementation of the backend interface: fp32 compute over bf16/f16/f32 weights, one
// thread pool, oneDNN sgemm for prefill when available.
#pragma once

#include <memory>
#include <string>

#include "core/backend.h"
#include "core/thread_pool.h"
#include "cpu/gemm.h"

namespace starkv::cpu {

struct CpuOptions {
  int threads = 0;          // 0: hardware_concurrency
  int64_t large_m = 20;     // matmul rows at which the prefill GEMM path starts
  bool use_dnnl = true;
  std::string matmul = "fp32";  // prefill arithmetic for BF16 weights: fp32 | bf16 | auto (ResolveCpuMatmul)
};

class CpuBackend final : public Backend {
 public:
  CpuBackend(MemoryAccount* account, const CpuOptions& opt);

  std::string Name() const override { return "cpu"; }
  std::string GemmName() const override;
  std::string SimdName() const override;
  int Threads() const override { return pool_.size(); }
  ThreadPool& pool() { return pool_; }
  GemmContext& gemm() { return gemm_; }

  Buffer Alloc(MemCategory cat, int64_t floats) override;
  Buffer AllocHost(MemCategory cat, size_t bytes) override { return Buffer(account_, cat, bytes); }
  void Upload(const void* host, size_t bytes, void* dst) override;
  void Download(const void* src, size_t bytes, void* host) override;
  void CopyRows(const float* src, int64_t ld_src, const int64_t* src_rows, float* dst, int64_t ld_dst,
                const int64_t* dst_rows, int64_t n, int64_t width) override;
  void MatMul(const float* x, int64_t M, const Tensor& W, const Tensor* bias, float* y) override;
  void RmsNorm(const float* x, int64_t M, int64_t D, const Tensor& w, float eps, float* y) override;
  void LayerNorm(const float* x, int64_t M, int64_t D, const Tensor& w, const Tensor& b, float eps, float* y) override;
  void Rotary(float* x, int64_t n, int64_t row, int heads, int hd, const float* cos, const float* sin) override;
  void Attention(const AttnArgs& a) override;
  void GatedAct(Act act, const float* gate, const float* up, int64_t n, float* out) override;
  void Activation(Act act, float* x, int64_t n) override;
  void Add(float* y, const float* x, int64_t n) override;
  void RowNorms(const float* x, int64_t rows, int64_t width, float* y) override;
  void GatherRows(const Tensor& table, const int32_t* ids, int64_t n, float* out) override;
  int32_t Sample(float* logits, int64_t n, const SampleParams& p, std::mt19937_64& rng) override;

 private:
  MemoryAccount* account_;
  ThreadPool pool_;
  Buffer workspace_;
  Buffer attn_kv_;  // the bf16 attention's copy of K and V, kept between calls (cpu::Attention)
  GemmContext gemm_;
};

// "avx512f+avx512bw+avx512_bf16" style summary of what this build uses (compile-time features).
std::string SimdSummary();

}  // namespace starkv::cpu
