// CudaBackend: device memory through the model's MemoryAccount, weights uploaded once per host tensor,
// each op forwarded to its kernel (pointwise.cu, attention.cu, gemm.cu) on one stream. Also the device
// queries behind cudaInfo() and the device bench.
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iterator>
#include <mutex>
#include <unordered_map>
#include <thread>
#include <cstdio>
#include <cstring>

#include "cpu/sample.h"
#include "cuda_backend.h"
#include "cuda_common.cuh"
#include "gemm.h"

#ifndef STARKV_CUDA_ARCHS
#define STARKV_CUDA_ARCHS ""
#endif

namespace starkv::cuda {
namespace {

cudaStream_t S(void* s) { return static_cast<cudaStream_t>(s); }

}  // namespace

// Every block DeviceAlloc hands out, with the backend whose cache takes it back when its Buffer goes
// (a null owner: the backend is gone, free it).
namespace {
struct BlockInfo {
  CudaBackend* owner;
  size_t bytes;
};
std::mutex g_blocks_mu;
std::unordered_map<void*, BlockInfo>& Blocks() {
  static auto* m = new std::unordered_map<void*, BlockInfo>();  // never destroyed: frees may come late
  return *m;
}
}  // namespace

void FreeDeviceBlock(void* p) {
  BlockInfo b{nullptr, 0};
  {
    std::lock_guard<std::mutex> lk(g_blocks_mu);
    auto it = Blocks().find(p);
    if (it != Blocks().end()) {
      b = it->second;
      Blocks().erase(it);
    }
  }
  if (b.owner) b.owner->Recycle(p, b.bytes);
  else cudaFree(p);  // synchronises with the device first
}

int CountDevices(std::string* reason) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    if (reason) {
      *reason = std::string("no CUDA device: ") + cudaGetErrorString(e);
      if (e == cudaErrorInsufficientDriver) {
        // The runtime says the same when there is no driver at all: tell the two apart.
        void* drv = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
        int rt = 0;
        cudaRuntimeGetVersion(&rt);
        if (!drv) *reason = "no CUDA device: no NVIDIA driver found (libcuda.so.1 is not installed)";
        else {
          *reason += " (the driver is older than CUDA " + std::to_string(rt / 1000) + "." + std::to_string(rt % 1000 / 10) +
                     ", which this build links: update the NVIDIA driver)";
          dlclose(drv);
        }
      }
    }
    return 0;
  }
  if (n == 0 && reason) *reason = "no CUDA device: the driver reports 0 devices";
  return n;
}

std::string CudaErrorText(int code) {
  const auto e = static_cast<cudaError_t>(code);
  std::string text = cudaGetErrorString(e);
  switch (e) {
    case cudaErrorIllegalAddress: case cudaErrorLaunchTimeout: case cudaErrorAssert:
    case cudaErrorHardwareStackError: case cudaErrorIllegalInstruction: case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace: case cudaErrorInvalidPc: case cudaErrorLaunchFailure:
      text += " (a kernel faulted, in this launch or an earlier one: kernels run asynchronously. The GPU can no "
              "longer be used by this process and every later CUDA call fails the same way: restart starkv)";
      break;
    default: break;
  }
  return text;
}

CudaInfo QueryCudaInfo(bool free_memory) {
  CudaInfo info;
  std::string archs = STARKV_CUDA_ARCHS;
  for (size_t b = 0; b < archs.size();) {
    size_t e = archs.find(',', b);
    if (e == std::string::npos) e = archs.size();
    std::string a = archs.substr(b, e - b);
    const size_t dash = a.find('-');  // "90-real" style entries
    if (dash != std::string::npos) a = a.substr(0, dash);
    if (!a.empty()) info.archs.push_back(a);
    b = e + 1;
  }
  const int n = CountDevices(&info.error);
  for (int i = 0; i < n; ++i) {
    DeviceInfo d;
    d.index = i;
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) {
      cudaGetLastError();
      continue;
    }
    d.name = p.name;
    d.cc = std::to_string(p.major) + "." + std::to_string(p.minor);
    d.total_bytes = static_cast<int64_t>(p.totalGlobalMem);
    if (free_memory) {
      int prev = 0;
      cudaGetDevice(&prev);
      size_t fr = 0, tot = 0;
      if (cudaSetDevice(i) == cudaSuccess && cudaMemGetInfo(&fr, &tot) == cudaSuccess) {
        d.free_bytes = static_cast<int64_t>(fr);
        d.total_bytes = static_cast<int64_t>(tot);
      } else {
        cudaGetLastError();
      }
      cudaSetDevice(prev);
    }
    info.devices.push_back(d);
  }
  if (!info.devices.empty()) info.error.clear();
  else if (info.error.empty()) info.error = "no CUDA device: none could be queried";
  return info;
}

CudaBackend::CudaBackend(MemoryAccount* account, int device, int host_threads)
    : account_(account),
      device_(device),
      host_threads_(host_threads > 0 ? host_threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()))) {
  std::string reason;
  const int n = CountDevices(&reason);
  if (n == 0) throw Error(reason);
  if (device < 0 || device >= n)
    throw Error("no CUDA device: cuda:" + std::to_string(device) + " asked for, " + std::to_string(n) +
                " device(s) present");
  Use();
  cudaDeviceProp p{};
  Check(cudaGetDeviceProperties(&p, device), "cudaGetDeviceProperties");
  if (p.major < 8) {
    throw Error("no CUDA device: cuda:" + std::to_string(device) + " " + p.name + " is sm_" + std::to_string(p.major) +
                std::to_string(p.minor) + "; this build needs sm_80 or newer (bf16 tensor cores)");
  }
  arch_ = "sm_" + std::to_string(p.major) + std::to_string(p.minor);
  describe_ = "cuda:" + std::to_string(device) + " " + p.name + " (" + arch_ + ")";
  cudaStream_t s = nullptr;
  Check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
  stream_ = s;
  gemm_ = std::make_unique<Gemm>(stream_);
}

CudaBackend::~CudaBackend() {
  // Not Use(): it throws where the device cannot be made current (a dead context), and a destructor
  // that throws ends the process. What follows only returns errors, which are ignored.
  int cur = -1;
  if (cudaGetDevice(&cur) != cudaSuccess || cur != device_) cudaSetDevice(device_);
  cudaStreamSynchronize(S(stream_));
  for (const PendingOp& o : pending_ops_) {  // an op profile nobody took
    cudaEventDestroy(static_cast<cudaEvent_t>(o.begin));
    cudaEventDestroy(static_cast<cudaEvent_t>(o.end));
  }
  {
    std::lock_guard<std::mutex> lk(cache_mu_);
    closing_ = true;  // from here on freed blocks go back to the driver
  }
  gemm_.reset();
  for (auto& b : scratch_) b.Release();
  weights_.clear();
  TrimCache(0);
  {
    std::lock_guard<std::mutex> lk(g_blocks_mu);
    for (auto& [p, b] : Blocks())
      if (b.owner == this) b.owner = nullptr;  // outlives the backend (should not happen): plain cudaFree later
  }
  cudaStreamDestroy(S(stream_));
}

void CudaBackend::Recycle(void* p, size_t bytes) {
  {
    std::lock_guard<std::mutex> lk(cache_mu_);
    if (!closing_ && bytes <= kMaxCachedBlock && cached_bytes_ + bytes <= kMaxCache) {
      cache_.emplace(bytes, p);  // reused in stream order: work queued on it runs before a later user's
      cached_bytes_ += bytes;
      return;
    }
  }
  cudaFree(p);  // never throws (called from Buffer destructors); UVA finds the block's device
}

void CudaBackend::TrimCache(size_t keep) {
  std::lock_guard<std::mutex> lk(cache_mu_);
  while (cached_bytes_ > keep && !cache_.empty()) {
    auto it = std::prev(cache_.end());  // largest first
    cudaFree(it->second);
    cached_bytes_ -= it->first;
    cache_.erase(it);
  }
}

void CudaBackend::Use() const {
  int cur = -1;
  if (cudaGetDevice(&cur) != cudaSuccess || cur != device_) Check(cudaSetDevice(device_), "cudaSetDevice");
}

void* CudaBackend::ProfileBegin() {
  if (!profile_.on()) return nullptr;
  cudaEvent_t e = nullptr;
  Check(cudaEventCreate(&e), "cudaEventCreate (op profile)");
  Check(cudaEventRecord(e, S(stream_)), "cudaEventRecord (op profile)");
  return e;
}

void CudaBackend::ProfileEnd(const char* op, void* begin) {
  cudaEvent_t e = nullptr;
  if (cudaEventCreate(&e) != cudaSuccess || cudaEventRecord(e, S(stream_)) != cudaSuccess) {
    cudaGetLastError();  // a destructor does not throw: this op goes unrecorded
    cudaEventDestroy(static_cast<cudaEvent_t>(begin));
    if (e) cudaEventDestroy(e);
    return;
  }
  std::lock_guard<std::mutex> lk(prof_mu_);
  pending_ops_.push_back(PendingOp{op, begin, e});
}

std::vector<OpTime> CudaBackend::TakeOpProfile() {
  std::vector<PendingOp> ops;
  {
    std::lock_guard<std::mutex> lk(prof_mu_);
    ops.swap(pending_ops_);
  }
  if (!ops.empty()) {
    Use();
    Check(cudaStreamSynchronize(S(stream_)), "op profile");
    for (const PendingOp& o : ops) {
      float ms = 0.0f;
      if (cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(o.begin), static_cast<cudaEvent_t>(o.end)) == cudaSuccess)
        profile_.Add(o.op, ms);
      cudaEventDestroy(static_cast<cudaEvent_t>(o.begin));
      cudaEventDestroy(static_cast<cudaEvent_t>(o.end));
    }
  }
  return profile_.Take();
}

std::string CudaBackend::GemmName() const { return gemm_->Name(); }

bool CudaBackend::DeviceMemory(int64_t* free_bytes, int64_t* total_bytes) const {
  Use();
  size_t fr = 0, tot = 0;
  if (cudaMemGetInfo(&fr, &tot) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  *free_bytes = static_cast<int64_t>(fr);
  *total_bytes = static_cast<int64_t>(tot);
  return true;
}

void* CudaBackend::DeviceAlloc(size_t bytes, const std::string& what) {
  const size_t want = (std::max<size_t>(bytes, 1) + 255) & ~size_t(255);
  {
    std::lock_guard<std::mutex> lk(cache_mu_);
    auto it = cache_.lower_bound(want);  // the smallest cached block that fits, if it is not much larger
    if (it != cache_.end() && it->first <= want + want / 8 + 4096) {
      void* p = it->second;
      const size_t got = it->first;
      cached_bytes_ -= got;
      cache_.erase(it);
      std::lock_guard<std::mutex> lb(g_blocks_mu);
      Blocks()[p] = BlockInfo{this, got};
      return p;
    }
  }
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, want);
  if (e == cudaErrorMemoryAllocation) {  // give the cache back to the driver and try once more
    cudaGetLastError();
    TrimCache(0);
    e = cudaMalloc(&p, want);
  }
  if (e == cudaSuccess) {
    std::lock_guard<std::mutex> lb(g_blocks_mu);
    Blocks()[p] = BlockInfo{this, want};
    return p;
  }
  cudaGetLastError();
  size_t fr = 0, tot = 0;
  std::string where;
  if (cudaMemGetInfo(&fr, &tot) == cudaSuccess) where = "; " + GiB(double(fr)) + " free of " + GiB(double(tot));
  else cudaGetLastError();
  if (e == cudaErrorMemoryAllocation)
    throw OutOfDeviceMemory("CUDA out of memory allocating " + GiB(double(bytes)) + " for " + what + where);
  throw Error("CUDA error allocating " + GiB(double(bytes)) + " for " + what + ": " + CudaErrorText(e) + where);
}

Buffer CudaBackend::Alloc(MemCategory cat, int64_t floats) {
  Use();
  const size_t bytes = sizeof(float) * static_cast<size_t>(floats < 0 ? 0 : floats);
  if (bytes == 0) return Buffer();
  void* p = DeviceAlloc(bytes, MemCategoryName(cat));
  // Zeroed like the CPU's buffers (stream-ordered: before any later op on this stream).
  const cudaError_t e = cudaMemsetAsync(p, 0, bytes, S(stream_));
  if (e != cudaSuccess) {
    FreeDeviceBlock(p);
    Check(e, "cudaMemsetAsync");
  }
  return Buffer(account_, cat, p, bytes, &FreeDeviceBlock);
}

void* CudaBackend::Scratch(size_t bytes, int slot) {
  Buffer& b = scratch_[slot];
  if (b.bytes() < bytes) {
    b.Release();  // back to the cache; a later user is ordered after the work queued on it
    const size_t want = bytes < 4096 ? 4096 : bytes + bytes / 4;
    b = Buffer(account_, MemCategory::Workspace, DeviceAlloc(want, "workspace"), want, &FreeDeviceBlock);
  }
  return b.data();
}

void* CudaBackend::UploadScratch(const void* host, size_t bytes, int slot) {
  void* d = Scratch(bytes, slot);
  // Pageable source: returns once the data is staged, so the host array may change afterwards.
  Check(cudaMemcpyAsync(d, host, bytes, cudaMemcpyHostToDevice, S(stream_)), "upload");
  return d;
}

void CudaBackend::Upload(const void* host, size_t bytes, void* dst) {
  if (!bytes) return;
  Use();
  const DeviceOpScope prof(this, "upload");
  Check(cudaMemcpyAsync(dst, host, bytes, cudaMemcpyHostToDevice, S(stream_)), "Upload");
}

void CudaBackend::Download(const void* src, size_t bytes, void* host) {
  if (!bytes) return;
  Use();
  const DeviceOpScope prof(this, "download");
  Check(cudaMemcpyAsync(host, src, bytes, cudaMemcpyDeviceToHost, S(stream_)), "Download");
  Check(cudaStreamSynchronize(S(stream_)), "Download (a kernel before it failed)");
}

void CudaBackend::Synchronize() {
  Use();
  Check(cudaStreamSynchronize(S(stream_)), "stream synchronize");
}

const void* CudaBackend::Weight(const Tensor& t, const std::string& name) {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = weights_.find(t.data);
  if (it != weights_.end()) {
    if (it->second.bytes() < t.Bytes())
      throw Error("weight " + name + ": a tensor at the same address with more bytes was uploaded smaller");
    return it->second.data();
  }
  const size_t bytes = t.Bytes();
  void* p = DeviceAlloc(bytes, "weights (" + name + ")");
  const cudaError_t e = cudaMemcpyAsync(p, t.data, bytes, cudaMemcpyHostToDevice, S(stream_));
  if (e != cudaSuccess) {
    FreeDeviceBlock(p);
    Check(e, "weight upload");
  }
  Buffer b(account_, MemCategory::Weights, p, bytes, &FreeDeviceBlock);
  return weights_.emplace(t.data, std::move(b)).first->second.data();
}

void CudaBackend::PreloadWeight(const Tensor& t, const std::string& name) {
  if (!t.Valid()) return;
  Use();
  Weight(t, name);
}

void CudaBackend::CopyRows(const float* src, int64_t ld_src, const int64_t* src_rows, float* dst, int64_t ld_dst,
                           const int64_t* dst_rows, int64_t n, int64_t width) {
  if (n <= 0 || width <= 0) return;
  Use();
  const DeviceOpScope prof(this, "copy_rows");
  std::lock_guard<std::mutex> lk(mu_);
  const size_t ib = sizeof(int64_t) * static_cast<size_t>(n);
  const int64_t* s = src_rows ? static_cast<const int64_t*>(UploadScratch(src_rows, ib, 0)) : nullptr;
  const int64_t* d = dst_rows ? static_cast<const int64_t*>(UploadScratch(dst_rows, ib, 1)) : nullptr;
  LaunchCopyRows(S(stream_), src, ld_src, s, dst, ld_dst, d, n, width);
}

void CudaBackend::MatMul(const float* x, int64_t M, const Tensor& W, const Tensor* bias, float* y) {
  if (M <= 0) return;
  Use();
  const DeviceOpScope prof(this, MatMulOpName(M));
  const int64_t N = W.Rows(), K = W.Cols();
  const void* w = Weight(W, "weight " + ShapeString(W));
  const void* b = bias && bias->Valid() ? Weight(*bias, "bias " + ShapeString(*bias)) : nullptr;
  std::lock_guard<std::mutex> lk(mu_);
  void* xbuf = W.dtype != DType::F32 && M > kGemvRows ? Scratch(2 * static_cast<size_t>(M * K), 2) : nullptr;
  gemm_->Run(x, M, K, w, W.dtype, N, y, xbuf);
  if (b) LaunchAddBias(S(stream_), y, M, N, b, bias->dtype);
}

void CudaBackend::RmsNorm(const float* x, int64_t M, int64_t D, const Tensor& w, float eps, float* y) {
  Use();
  const DeviceOpScope prof(this, "rms_norm");
  LaunchRmsNorm(S(stream_), x, M, D, Weight(w, "norm weight"), w.dtype, eps, y);
}

void CudaBackend::LayerNorm(const float* x, int64_t M, int64_t D, const Tensor& w, const Tensor& b, float eps,
                            float* y) {
  Use();
  const DeviceOpScope prof(this, "layer_norm");
  LaunchLayerNorm(S(stream_), x, M, D, Weight(w, "norm weight"), w.dtype, Weight(b, "norm bias"), b.dtype, eps, y);
}

void CudaBackend::Rotary(float* x, int64_t n, int64_t row, int heads, int hd, const float* cos, const float* sin) {
  Use();
  const DeviceOpScope prof(this, "rotary");
  LaunchRotary(S(stream_), x, n, row, heads, hd, cos, sin);
}

void CudaBackend::Attention(const AttnArgs& a) {
  Use();
  const DeviceOpScope prof(this, AttentionOpName(a.n_q));
  std::lock_guard<std::mutex> lk(mu_);
  const int64_t* seg = nullptr;
  if (a.segments) {
    if (a.n_segments < 1) throw Error("attention: segments need at least one segment");
    seg = static_cast<const int64_t*>(UploadScratch(a.segments, sizeof(int64_t) * (a.n_segments + 1), 3));
  }
  const int64_t sb = AttentionScratchBytes(a);
  LaunchAttention(S(stream_), a, seg, sb > 0 ? Scratch(static_cast<size_t>(sb), 4) : nullptr);
}

void CudaBackend::GatedAct(Act act, const float* gate, const float* up, int64_t n, float* out) {
  Use();
  const DeviceOpScope prof(this, "gated_act");
  LaunchGatedAct(S(stream_), act, gate, up, n, out);
}

void CudaBackend::Activation(Act act, float* x, int64_t n) {
  Use();
  const DeviceOpScope prof(this, "activation");
  LaunchActivation(S(stream_), act, x, n);
}

void CudaBackend::Add(float* y, const float* x, int64_t n) {
  Use();
  const DeviceOpScope prof(this, "add");
  LaunchAdd(S(stream_), y, x, n);
}

void CudaBackend::GatherRows(const Tensor& table, const int32_t* ids, int64_t n, float* out) {
  if (n <= 0) return;
  Use();
  const DeviceOpScope prof(this, "gather_rows");
  const void* t = Weight(table, "embedding table");
  std::lock_guard<std::mutex> lk(mu_);
  const int32_t* d = static_cast<const int32_t*>(UploadScratch(ids, sizeof(int32_t) * static_cast<size_t>(n), 0));
  LaunchGatherRows(S(stream_), t, table.dtype, table.Cols(), d, n, out);
}

int32_t CudaBackend::Sample(float* logits, int64_t n, const SampleParams& p, std::mt19937_64& rng) {
  const OpProfile::Scope prof(&profile_, "sample (host)");
  return cpu::Sample(logits, n, p, rng);
}

// ---- device bench ----
namespace {

__global__ void CopyKernel(const float4* __restrict__ a, float4* __restrict__ b, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    b[i] = a[i];
}

}  // namespace

CudaBenchResult MeasureCuda(int device, int64_t copy_bytes, int gemm_size, int reps, int64_t attn_tokens) {
  MemoryAccount acc;
  CudaBackend be(&acc, device);
  CudaBenchResult r;
  r.device = be.Describe();
  r.gemm = be.GemmName();
  reps = reps < 1 ? 1 : reps;
  cudaEvent_t e0, e1;
  Check(cudaEventCreate(&e0), "cudaEventCreate");
  Check(cudaEventCreate(&e1), "cudaEventCreate");
  const int64_t n4 = (copy_bytes / 2 + 15) / 16;  // two buffers of copy_bytes / 2
  {
    Buffer a = be.Alloc(MemCategory::Workspace, n4 * 4), b = be.Alloc(MemCategory::Workspace, n4 * 4);
    be.Synchronize();  // Alloc zeroes on the backend's non-blocking stream; the copies below run on the default one
    float best = 1e30f;
    for (int i = 0; i < reps + 1; ++i) {
      Check(cudaEventRecord(e0, nullptr), "cudaEventRecord");
      CopyKernel<<<1024, 256>>>(static_cast<const float4*>(a.data()), static_cast<float4*>(b.data()), n4);
      CheckLaunch("bench copy");
      Check(cudaEventRecord(e1, nullptr), "cudaEventRecord");
      Check(cudaEventSynchronize(e1), "bench copy");
      float ms = 0;
      cudaEventElapsedTime(&ms, e0, e1);
      if (i > 0 && ms < best) best = ms;  // the first run warms up
    }
    r.bandwidth_gbs = 2.0 * 16.0 * double(n4) / (best * 1e-3) / 1e9;
  }
  {
    const int64_t S = gemm_size;
    std::vector<uint16_t> w(static_cast<size_t>(S * S));
    for (size_t i = 0; i < w.size(); ++i) w[i] = F32ToBf16(static_cast<float>((i * 2654435761u) % 1000) * 1e-3f - 0.5f);
    Tensor W;
    W.dtype = DType::BF16;
    W.ndim = 2;
    W.shape[0] = S;
    W.shape[1] = S;
    W.data = w.data();
    Buffer x = be.Alloc(MemCategory::Activations, S * S), y = be.Alloc(MemCategory::Activations, S * S);
    be.MatMul(x.f(), S, W, nullptr, y.f());  // uploads W, warms up
    be.Synchronize();
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) be.MatMul(x.f(), S, W, nullptr, y.f());
    be.Synchronize();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.bf16_gemm_tflops = 2.0 * double(S) * S * S * reps / s / 1e12;
  }
  if (attn_tokens > 0) {
    // q [n][heads*hd], keys/values [kv_heads][n][hd] (the KV store's layout); values as the CPU bench's.
    const int64_t n = attn_tokens;
    r.attn_tokens = n;
    auto rate = [&](int heads, int kv_heads, int hd, bool causal, bool tc) {
      const int64_t qn = n * heads * hd, kn = n * kv_heads * hd;
      std::vector<float> host(static_cast<size_t>(std::max(qn, kn)));
      for (size_t i = 0; i < host.size(); ++i) host[i] = static_cast<float>(static_cast<int64_t>(i * 7 % 13) - 6) * 0.05f;
      Buffer q = be.Alloc(MemCategory::Workspace, qn), k = be.Alloc(MemCategory::Workspace, kn),
             v = be.Alloc(MemCategory::Workspace, kn), out = be.Alloc(MemCategory::Workspace, qn);
      be.Upload(host.data(), sizeof(float) * qn, q.data());
      be.Upload(host.data(), sizeof(float) * kn, k.data());
      be.Upload(host.data(), sizeof(float) * kn, v.data());
      const int64_t seg[2] = {0, n};
      AttnArgs a;
      a.q = q.f();
      a.q_row = heads * hd;
      a.k = k.f();
      a.v = v.f();
      a.k_row = a.v_row = hd;
      a.k_head = a.v_head = n * hd;
      a.out = out.f();
      a.out_row = heads * hd;
      a.n_q = a.n_kv = n;
      a.heads = heads;
      a.kv_heads = kv_heads;
      a.hd = hd;
      a.scale = 1.0f / std::sqrt(static_cast<float>(hd));
      if (!causal) {
        a.segments = seg;
        a.n_segments = 1;
      }
      a.bf16_weights = tc;
      be.Attention(a);  // warms up
      be.Synchronize();
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < reps; ++i) be.Attention(a);
      be.Synchronize();
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double pairs = causal ? 0.5 * double(n) * double(n + 1) : double(n) * double(n);
      return 4.0 * pairs * hd * heads * reps / s / 1e12;
    };
    r.attn_vision_tc_tflops = rate(16, 16, 80, false, true);
    r.attn_vision_fp32_tflops = rate(16, 16, 80, false, false);
    r.attn_text_tc_tflops = rate(28, 4, 128, true, true);
    r.attn_text_fp32_tflops = rate(28, 4, 128, true, false);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  return r;
}

}  // namespace starkv::cuda
