// The CUDA implementation of the backend interface (native/core/backend.h). Plain C++ header: no CUDA
// types, so the model and the binding include it without nvcc; only compiled in with STARKV_HAVE_CUDA.
// Activations are fp32 device buffers; weights are copied to the device once per host tensor (keyed by
// the host data pointer) in their checkpoint dtype. All work runs in order on one CUDA stream; Download
// waits for it. Every public method makes the backend's device current on the calling thread first.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/backend.h"

namespace starkv::cuda {

struct DeviceInfo {
  int index = 0;
  std::string name;
  std::string cc;  // "9.0"
  int64_t total_bytes = 0, free_bytes = -1;  // free: -1 unless asked for
};

struct CudaInfo {
  bool compiled = true;
  std::vector<std::string> archs;  // the SASS targets of this build ("80", "86", ...)
  std::vector<DeviceInfo> devices;
  std::string error;  // "no CUDA device: <reason>" when devices is empty
};

// What the runtime sees. Never throws: a missing driver or device is reported in `error`. Free memory
// only with `free_memory`: asking makes the runtime create a context on every device, which holds a few
// hundred MB of each GPU for the rest of the process (fine for `starkv devices`, not for the app's host).
CudaInfo QueryCudaInfo(bool free_memory = false);
// Number of usable devices; 0 with `reason` = "no CUDA device: <cudaGetErrorString>" otherwise.
int CountDevices(std::string* reason);
// cudaGetErrorString(code); for the errors after which CUDA's documentation says the process's context
// cannot be used any more (a kernel faulted: an illegal address, a trap, an assert, a timeout), with a
// note that the fault may come from an earlier launch and that only a restart helps. Every CUDA error
// message of kernels/ and kernels/kv/ goes through it.
std::string CudaErrorText(int code);

struct CudaBenchResult {
  std::string device;
  double bandwidth_gbs = 0;  // device-to-device copy kernel, read + write bytes / time
  double bf16_gemm_tflops = 0;
  std::string gemm;  // the GEMM that ran ("cublas (...)" or "wmma (...)")
  // The backend's attention over `attn_tokens` rows (TFLOP/s of q.k and p.v), on a bf16 model's path
  // (tensor cores) and on the fp32 kernel: one vision block (full attention, 16 heads of 80) and a text
  // prefill (causal, 28 query heads over 4 KV heads of 128: the 7B's). 0 when not measured.
  int64_t attn_tokens = 0;
  double attn_vision_tc_tflops = 0, attn_vision_fp32_tflops = 0, attn_text_tc_tflops = 0, attn_text_fp32_tflops = 0;
};
// Measures the device's copy bandwidth, bf16 GEMM rate (M = N = K = `gemm_size`) and, with attn_tokens
// > 0, the attention rates above. Throws starkv::Error ("no CUDA device: ...") when there is none.
CudaBenchResult MeasureCuda(int device, int64_t copy_bytes, int gemm_size, int reps, int64_t attn_tokens = 0);

class Gemm;  // kernels/gemm.h: cuBLAS (dlopen) or our own tensor-core kernel

namespace kv {
struct WindowArgs;  // kernels/kv/kv_kernels.h
}

class CudaBackend final : public Backend {
 public:
  // Throws starkv::Error "no CUDA device: ..." when `device` cannot be used. host_threads: what
  // Threads() reports, for the host-side work of a CUDA model (KV compression); 0 = hardware threads.
  CudaBackend(MemoryAccount* account, int device, int host_threads = 0);
  ~CudaBackend() override;

  std::string Name() const override { return "cuda"; }
  std::string GemmName() const override;
  std::string SimdName() const override { return arch_; }
  int Threads() const override { return host_threads_; }
  bool HostAccessible() const override { return false; }
  bool DeviceMemory(int64_t* free_bytes, int64_t* total_bytes) const override;
  // "cuda:0 NVIDIA H100 80GB HBM3 (sm_90)"
  std::string Describe() const { return describe_; }

  // Copies a weight to the device now (at load), so that out of memory names the tensor.
  void PreloadWeight(const Tensor& t, const std::string& name);

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
  // Logits are host memory (the interface's contract): the CPU's sampler, the same code as CpuBackend.
  int32_t Sample(float* logits, int64_t n, const SampleParams& p, std::mt19937_64& rng) override;
  // KV compression on the device (cuda_backend_kv.cu, kernels/kv): window sums, H2O's accumulated
  // attention, sparsity counts, key residuals and layer compaction.
  bool KvWindowSums(const float* keys, int64_t capacity, int kv_heads, const float* queries_host, int64_t q_rows,
                    int heads, int hd, int64_t seq_len, int64_t window, float* sums_host) override;
  bool KvAccumulatedSums(const float* keys, int64_t capacity, int kv_heads, const float* queries_host, int64_t q_rows,
                         int heads, int hd, int64_t seq_len, int64_t rows, float* sums_host) override;
  bool KvZeroCounts(const float* keys, int64_t capacity, int kv_heads, const float* queries_host, int64_t q_rows,
                    int heads, int hd, int64_t seq_len, int64_t rows, float threshold, int64_t* zeros_host) override;
  bool KvResiduals(const float* keys, int64_t capacity, int kv_heads, int hd, int64_t cur_start, int rank,
                   const int64_t* positions_host, int64_t n, float* res_host) override;
  bool KvCompact(float* keys, float* values, int kv_heads, int64_t capacity, int hd, const int64_t* kept_host,
                 int lists, int64_t n_keep, int64_t past_len, int64_t window) override;

  void Synchronize();
  int device() const { return device_; }
  // Device time per op (events around the work each op queues), resolved here: synchronises first.
  std::vector<OpTime> TakeOpProfile() override;

 private:
  friend class DeviceOpScope;
  // Op profile: an event recorded on the stream now (null when the profile is off), and the end of the
  // op that began there.
  void* ProfileBegin();
  void ProfileEnd(const char* op, void* begin);
  void Use() const;  // makes device_ current on this thread
  // The kernels' arguments for the last `rows` query rows of a layer; uploads the queries into `q`.
  kv::WindowArgs WindowInputs(const float* keys, int64_t capacity, int kv_heads, const float* queries_host,
                              int64_t q_rows, int heads, int hd, int64_t seq_len, int64_t rows, Buffer& q);
  // Column sums of the last `rows` query rows over the past keys (all_keys false: KvWindowSums) or every
  // key (KvAccumulatedSums) into sums_host [heads][cols].
  void ColumnSums(const float* keys, int64_t capacity, int kv_heads, const float* queries_host, int64_t q_rows,
                  int heads, int hd, int64_t seq_len, int64_t rows, bool all_keys, float* sums_host);
  // Device memory for `what` (named in the out-of-memory error), from the block cache when possible.
  // Sizes are rounded up to 256 bytes; freed blocks (FreeDeviceBlock -> Recycle) are kept for reuse
  // (all work is on one stream, so reuse is ordered after what was queued on a block), up to
  // kMaxCache bytes of blocks of at most kMaxCachedBlock; out of memory empties the cache and retries.
  void* DeviceAlloc(size_t bytes, const std::string& what);
  void Recycle(void* p, size_t bytes);
  void TrimCache(size_t keep);  // frees cached blocks, largest first, until at most `keep` bytes remain
  // The device copy of a weight tensor (uploaded on first use).
  const void* Weight(const Tensor& t, const std::string& name);
  // Device scratch of `bytes` in slot `slot` (grown when needed; reused in stream order, not initialised).
  void* Scratch(size_t bytes, int slot);
  // Uploads host data into scratch slot `slot` and returns the device copy.
  void* UploadScratch(const void* host, size_t bytes, int slot);

  MemoryAccount* account_;
  int device_;
  int host_threads_;
  void* stream_ = nullptr;  // cudaStream_t
  std::string arch_, describe_;
  std::unique_ptr<Gemm> gemm_;
  std::mutex mu_;  // the weight map and scratch (Download/Upload may come from several threads)
  std::unordered_map<const void*, Buffer> weights_;
  static constexpr size_t kMaxCachedBlock = size_t(512) << 20, kMaxCache = size_t(2) << 30;
  std::mutex cache_mu_;
  std::multimap<size_t, void*> cache_;  // free device blocks by size
  size_t cached_bytes_ = 0;
  bool closing_ = false;
  std::mutex prof_mu_;
  struct PendingOp {
    const char* op;
    void* begin;  // cudaEvent_t
    void* end;
  };
  std::vector<PendingOp> pending_ops_;
  Buffer scratch_[5];  // 0, 1: row indices; 2: x in 16 bits for cuBLAS; 3: segments; 4: attention splits or bf16 K/V

  friend void FreeDeviceBlock(void* p);
};

// The device time of the work one op queues on the backend's stream, while the profile is on. Only the
// outermost op of a host thread counts (a KV hook's own uploads and downloads are part of it).
class DeviceOpScope {
 public:
  DeviceOpScope(CudaBackend* be, const char* op) : be_(be), op_(op), begin_(Depth()++ == 0 ? be->ProfileBegin() : nullptr) {}
  ~DeviceOpScope() {
    --Depth();
    if (begin_) be_->ProfileEnd(op_, begin_);
  }
  DeviceOpScope(const DeviceOpScope&) = delete;
  DeviceOpScope& operator=(const DeviceOpScope&) = delete;

 private:
  static int& Depth() {
    static thread_local int depth = 0;
    return depth;
  }
  CudaBackend* be_;
  const char* op_;
  void* begin_;
};

}  // namespace starkv::cuda
