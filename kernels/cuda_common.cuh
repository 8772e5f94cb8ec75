// Internal to kernels/*.cu: error checks, grid helpers, block reductions, and the launchers of each op
// file (pointwise.cu, attention.cu, gemm.cu) as plain functions on device pointers and a stream.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "core/backend.h"
#include "core/dtype.h"
#include "core/error.h"
#include "cuda_backend.h"  // CudaErrorText

// The kernels must round like the CPU code (expf, erff, IEEE division); --use_fast_math would swap in
// approximations and the op table's thresholds would no longer mean what they say.
#ifdef __USE_FAST_MATH__
#warning "kernels/ built with --use_fast_math: results drift from the CPU backend"
#endif

namespace starkv::cuda {

inline void Check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    cudaGetLastError();  // clear a non-sticky error so the next call starts clean
    throw Error(std::string("CUDA error in ") + what + ": " + CudaErrorText(e));
  }
}
inline void CheckLaunch(const char* kernel) { Check(cudaGetLastError(), kernel); }

inline unsigned Blocks(int64_t n, int threads) {
  const int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned>(b < 1 ? 1 : (b > 1048576 ? 1048576 : b));  // grid-stride loops cover the rest
}

#ifdef __CUDACC__
__device__ inline float WarpSumF(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ inline double WarpSumD(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ inline float WarpMaxF(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
// Block-wide double sum (every thread gets it); buf holds >= 32 doubles of shared memory.
__device__ inline double BlockSumD(double v, double* buf) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
  v = WarpSumD(v);
  __syncthreads();
  if (lane == 0) buf[warp] = v;
  __syncthreads();
  double t = warp == 0 && lane < nw ? buf[lane] : 0.0;  // warp 0 only: thread 0 overwrites buf[0] below
  if (warp == 0) t = WarpSumD(t);
  if (threadIdx.x == 0) buf[0] = t;
  __syncthreads();
  return buf[0];
}
#endif

// ---- pointwise.cu ----
void LaunchRmsNorm(cudaStream_t s, const float* x, int64_t M, int64_t D, const void* w, DType wt, float eps, float* y);
void LaunchLayerNorm(cudaStream_t s, const float* x, int64_t M, int64_t D, const void* w, DType wt, const void* b,
                     DType bt, float eps, float* y);
void LaunchRotary(cudaStream_t s, float* x, int64_t n, int64_t row, int heads, int hd, const float* cos,
                  const float* sin);
void LaunchGatedAct(cudaStream_t s, Act act, const float* gate, const float* up, int64_t n, float* out);
void LaunchActivation(cudaStream_t s, Act act, float* x, int64_t n);
void LaunchAdd(cudaStream_t s, float* y, const float* x, int64_t n);
void LaunchGatherRows(cudaStream_t s, const void* table, DType t, int64_t D, const int32_t* ids, int64_t n, float* out);
void LaunchCopyRows(cudaStream_t s, const float* src, int64_t ld_src, const int64_t* src_rows, float* dst,
                    int64_t ld_dst, const int64_t* dst_rows, int64_t n, int64_t width);
void LaunchAddBias(cudaStream_t s, float* y, int64_t M, int64_t N, const void* bias, DType bt);
// fp32 -> bf16 (kind 1) or f16 (kind 2), round to nearest even.
void LaunchConvert(cudaStream_t s, const float* x, int64_t n, DType to, void* out);

// ---- attention.cu ----
// a.segments is read on the host (the mask kind); dev_segments is its device copy. Few query rows over
// many keys (decode) split the keys over more blocks, and a bf16 model's prefill blocks (tensor cores)
// read bf16 copies of K and V: `scratch` then needs AttentionScratchBytes(a) bytes of device workspace
// (0: none; a null scratch then means no split).
int64_t AttentionScratchBytes(const AttnArgs& a);
void LaunchAttention(cudaStream_t s, const AttnArgs& a, const int64_t* dev_segments, void* scratch);

// ---- gemm.cu (own kernels; cuBLAS is driven from gemm.cu's Gemm class) ----
// y[M,N] = x[M,K] W[N,K]^T with W in `wt` (BF16/F16 through wmma tensor cores, F32 tiled), fp32 out.
void LaunchOwnGemm(cudaStream_t s, const float* x, int64_t M, int64_t K, const void* W, DType wt, int64_t N, float* y);
// Small M (decode): one warp per output column, fp32 accumulation over K in `wt`.
void LaunchGemv(cudaStream_t s, const float* x, int64_t M, int64_t K, const void* W, DType wt, int64_t N, float* y);

}  // namespace starkv::cuda
