// The ops the models call, as one abstract class. The CPU backend (native/cpu) implements it; a CUDA
// backend (kernels/) implements the same list. Activations are fp32 buffers from Alloc(); weight
// operands are Tensor views in their checkpoint dtype (BF16, F16 or F32). Row-major throughout.
#pragma once

#include <cstdint>
#include <random>
#include <string>

#include "core/memory.h"
#include "core/op_profile.h"
#include "core/tensor.h"

namespace starkv {

enum class Act { Silu, GeluErf, QuickGelu };

// Attention of n_q query rows over n_kv key/value rows. Element addressing:
//   q[i*q_row + h*hd + d]            query row i, query head h
//   k[g*k_head + s*k_row + d]         key slot s, KV head g (likewise v)
//   out[i*out_row + h*hd + d]
// Query head h reads KV head h / (heads / kv_heads). Scores are q.k * scale.
// Masking: segments == nullptr -> causal over the appended block: query i sees slots
// [0, n_kv - n_q + i] (every older stored slot, and the new block up to itself). segments != nullptr
// -> n_q == n_kv, non-causal inside each segment [segments[j], segments[j+1]) (vision).
struct AttnArgs {
  const float* q = nullptr;
  int64_t q_row = 0;
  const float* k = nullptr;
  int64_t k_row = 0, k_head = 0;
  const float* v = nullptr;
  int64_t v_row = 0, v_head = 0;
  float* out = nullptr;
  int64_t out_row = 0;
  int64_t n_q = 0, n_kv = 0;
  int heads = 0, kv_heads = 0, hd = 0;
  float scale = 1.0f;
  const int64_t* segments = nullptr;  // n_segments + 1 boundaries, first 0, last n_q
  int n_segments = 0;
  // The layer's weights are bf16 (a bf16 checkpoint): a backend that runs such a model's prefill matmuls
  // in bf16 (the CPU's --cpu-matmul bf16) runs this attention in bf16 too; fp32 checkpoints stay fp32.
  bool bf16_weights = false;
};

struct SampleParams {
  float temperature = 0.0f;  // <= 0: greedy (argmax, lowest index on ties)
  float top_p = 1.0f;        // nucleus mass in (0, 1]
  int top_k = 0;             // 0: no limit
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string Name() const = 0;
  virtual std::string GemmName() const = 0;  // which GEMM serves large matmuls
  virtual std::string SimdName() const = 0;
  virtual int Threads() const = 0;
  // Whether buffers from Alloc() can be read and written by host code (CPU: yes; CUDA: no, use
  // Upload/Download). Code above the backend that needs host data checks this.
  virtual bool HostAccessible() const { return true; }
  // The device's own memory figure (the driver's: every process), when it has one.
  virtual bool DeviceMemory(int64_t* free_bytes, int64_t* total_bytes) const { return false; }

  // Time per op kind while enabled (core/op_profile.h). TakeOpProfile returns what was collected since
  // the last call, after the device has finished the work queued so far, and resets it.
  void EnableOpProfile(bool on) { profile_.Enable(on); }
  virtual std::vector<OpTime> TakeOpProfile() { return profile_.Take(); }

  // Activation/workspace memory of this backend (host memory on CPU), counted in the model's account.
  virtual Buffer Alloc(MemCategory cat, int64_t floats) = 0;
  // Host memory counted in the same account (metadata such as KV slot tokens).
  virtual Buffer AllocHost(MemCategory cat, size_t bytes) = 0;
  // Host <-> backend memory (memcpy on CPU).
  virtual void Upload(const void* host, size_t bytes, void* dst) = 0;
  virtual void Download(const void* src, size_t bytes, void* host) = 0;
  // Row copy with optional gather/scatter (index arrays live in host memory):
  //   dst[(dst_rows ? dst_rows[i] : i) * ld_dst + j] = src[(src_rows ? src_rows[i] : i) * ld_src + j]
  // for i < n, j < width.
  virtual void CopyRows(const float* src, int64_t ld_src, const int64_t* src_rows, float* dst, int64_t ld_dst,
                        const int64_t* dst_rows, int64_t n, int64_t width) = 0;

  // y[M, N] = x[M, K] . W[N, K]^T (+ bias[N]); W is [N, ...] with K = product of the other dims.
  virtual void MatMul(const float* x, int64_t M, const Tensor& W, const Tensor* bias, float* y) = 0;
  // y = w * x / sqrt(mean(x^2) + eps) per row of D.
  virtual void RmsNorm(const float* x, int64_t M, int64_t D, const Tensor& w, float eps, float* y) = 0;
  // y = (x - mean) / sqrt(var + eps) * w + b per row of D (biased variance).
  virtual void LayerNorm(const float* x, int64_t M, int64_t D, const Tensor& w, const Tensor& b, float eps, float* y) = 0;
  // In place, rotate-half rotary on `heads` heads of hd channels in each of n rows:
  // x[i*row + h*hd + j]; cos/sin are [n, hd/2] (the angle of pair (j, j + hd/2)).
  virtual void Rotary(float* x, int64_t n, int64_t row, int heads, int hd, const float* cos, const float* sin) = 0;
  virtual void Attention(const AttnArgs& a) = 0;
  // out[i] = act(gate[i]) * up[i], i < n (out may alias gate).
  virtual void GatedAct(Act act, const float* gate, const float* up, int64_t n, float* out) = 0;
  virtual void Activation(Act act, float* x, int64_t n) = 0;  // in place
  virtual void Add(float* y, const float* x, int64_t n) = 0;  // y += x
  // y[r] = sqrt(sum_i x[r][i]^2) for `rows` rows of `width` (sum in double): the row norms that the KV
  // methods read (saliency), so that a device only sends back one float per row.
  virtual void RowNorms(const float* x, int64_t rows, int64_t width, float* y) = 0;
  // out[i, :] = table[ids[i], :] as fp32. ids must be valid rows (checked by the caller).
  virtual void GatherRows(const Tensor& table, const int32_t* ids, int64_t n, float* out) = 0;
  // Next token from host logits[n] (modified in place): argmax when greedy, else seeded sampling.
  virtual int32_t Sample(float* logits, int64_t n, const SampleParams& p, std::mt19937_64& rng) = 0;

  // ---- KV compression where the cache lives (for a store that is not host-accessible) ----
  // Each returns false when this backend has no kernel for it; the CPU backend needs none (the
  // methods of native/kv read its store directly).
  //
  // Observation-window column sums of one layer (kv::WindowAttentionSums): keys [kv_heads][capacity][hd]
  // in backend memory, queries [heads][q_rows][hd] in host memory (the last `window` rows are the
  // window, slots [seq_len - window, seq_len)); sums_host[h * P + t], P = seq_len - window, receives the
  // sum over the window rows of softmax(<q, k> / sqrt(hd)) for past slot t.
  virtual bool KvWindowSums(const float* keys, int64_t capacity, int kv_heads, const float* queries_host,
                            int64_t q_rows, int heads, int hd, int64_t seq_len, int64_t window, float* sums_host) {
    return false;
  }
  // H2O's accumulated attention of one layer (kv::AccumulatedAttentionSums): as KvWindowSums with the last
  // `rows` query rows, for every slot t < seq_len (each row adding the keys it sees, causally);
  // sums_host[h * seq_len + t].
  virtual bool KvAccumulatedSums(const float* keys, int64_t capacity, int kv_heads, const float* queries_host,
                                 int64_t q_rows, int heads, int hd, int64_t seq_len, int64_t rows, float* sums_host) {
    return false;
  }
  // Compaction of one layer in backend memory (kv::CompactLayer's row moves): per KV head, row dst <
  // n_keep + window takes the slot kept_host[list][dst] (dst < n_keep; ascending, < past_len; list 0 when
  // lists == 1, else the head) or past_len + dst - n_keep. keys and values [kv_heads][capacity][hd].
  virtual bool KvCompact(float* keys, float* values, int kv_heads, int64_t capacity, int hd, const int64_t* kept_host,
                         int lists, int64_t n_keep, int64_t past_len, int64_t window) {
    return false;
  }
  // VL-Cache's sparsity counts of one layer (kv::VlCacheZeroCounts): for the last `rows` query rows
  // (queries as in KvWindowSums), zeros_host[h * rows + i] = the causally visible keys whose eager
  // softmax probability (<q, k> * hd^-0.5) is not above `threshold`.
  virtual bool KvZeroCounts(const float* keys, int64_t capacity, int kv_heads, const float* queries_host,
                            int64_t q_rows, int heads, int hd, int64_t seq_len, int64_t rows, float threshold,
                            int64_t* zeros_host) {
    return false;
  }
  // GUI-KV's residuals of one layer (kv::GuiKvResiduals): res_host[g * n + i] = || k - Q Q^T k || for KV
  // head g's key of slot positions_host[i], Q the Gram-Schmidt basis of its keys of [cur_start, cur_start + rank).
  virtual bool KvResiduals(const float* keys, int64_t capacity, int kv_heads, int hd, int64_t cur_start, int rank,
                           const int64_t* positions_host, int64_t n, float* res_host) {
    return false;
  }

 protected:
  OpProfile profile_;
};

}  // namespace starkv
