// Internal helpers of the KV-compression kernels: error checks, stream cast, block reductions.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "cuda_backend.h"  // kernels/: CudaErrorText
#include "kv/kernels.h"  // native/kv/kernels.h: the shared STARKV_HD math
#include "kv_kernels.h"
#include "smem.cuh"  // kernels/smem.cuh

// The kernels must round like the CPU code they mirror (IEEE division, no flush-to-zero, expf/logf/powf
// within CUDA's documented ulp bounds): build them without --use_fast_math / -ftz=true / -prec-div=false
// (nvcc 13 defines no macro for these, so this cannot be checked here).

namespace starkv::cuda::kv::detail {

namespace k = ::starkv::kv::k;

inline cudaStream_t Stream(void* s) { return static_cast<cudaStream_t>(s); }

inline void Check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw CudaKvError(std::string("CUDA ") + what + ": " + ::starkv::cuda::CudaErrorText(e));
}
// After a launch: configuration errors surface here (asynchronous faults at the next sync).
inline void CheckLaunch(const char* kernel) { Check(cudaGetLastError(), kernel); }

inline void Require(bool ok, const std::string& msg) {
  if (!ok) throw CudaKvError(msg);
}

inline unsigned Blocks(int64_t n, int threads) { return static_cast<unsigned>((n + threads - 1) / threads); }

constexpr int kMaxBlock = 1024;

template <typename T>
__device__ inline T WarpSum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}
__device__ inline float WarpMax(float v) {
  for (int o = 16; o > 0; o >>= 1) {
    const float w = __shfl_down_sync(0xffffffffu, v, o);
    v = w > v ? w : v;
  }
  return v;
}

// Block-wide sum; every thread gets the result. `buf` holds >= 32 T in shared memory.
template <typename T>
__device__ inline T BlockSum(T v, T* buf) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
  v = WarpSum(v);
  __syncthreads();  // buf may still be read by a previous call
  if (lane == 0) buf[warp] = v;
  __syncthreads();
  T t = warp == 0 && lane < nw ? buf[lane] : T(0);  // warp 0 only: thread 0 overwrites buf[0] below
  if (warp == 0) t = WarpSum(t);
  if (threadIdx.x == 0) buf[0] = t;
  __syncthreads();
  return buf[0];
}
__device__ inline float BlockMax(float v, float* buf) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
  v = WarpMax(v);
  __syncthreads();
  if (lane == 0) buf[warp] = v;
  __syncthreads();
  float t = warp == 0 && lane < nw ? buf[lane] : -INFINITY;
  if (warp == 0) t = WarpMax(t);
  if (threadIdx.x == 0) buf[0] = t;
  __syncthreads();
  return buf[0];
}

}  // namespace starkv::cuda::kv::detail
