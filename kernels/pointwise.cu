// Norms (double-accumulated statistics, as the CPU), rotate-half rotary, activations, residual add, row
// gather from a weight table, row copies with gather/scatter, bias add and fp32 -> bf16/f16 conversion.
// Per-element math: the STARKV_HD functions of native/cpu/elementwise.h and native/core/dtype.h.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cpu/elementwise.h"
#include "cuda_common.cuh"

namespace starkv::cuda {
namespace {

constexpr int kThreads = 256;

__device__ inline float ApplyAct(Act a, float x) {
  switch (a) {
    case Act::Silu: return ew::Silu(x);
    case Act::GeluErf: return ew::GeluErf(x);
    case Act::QuickGelu: return ew::QuickGelu(x);
  }
  return x;
}

__global__ void RmsNormKernel(const float* __restrict__ x, int64_t D, const void* __restrict__ w, DType wt, float eps,
                              float* __restrict__ y) {
  __shared__ double buf[32];
  const float* xr = x + blockIdx.x * D;
  float* yr = y + blockIdx.x * D;
  double ss = 0.0;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) ss += static_cast<double>(xr[i]) * xr[i];
  ss = BlockSumD(ss, buf);
  const float inv = ew::InvRms(ss / static_cast<double>(D), eps);
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) yr[i] = ew::RmsScale(xr[i], inv, LoadF32(w, wt, i));
}

__global__ void LayerNormKernel(const float* __restrict__ x, int64_t D, const void* __restrict__ w, DType wt,
                                const void* __restrict__ b, DType bt, float eps, float* __restrict__ y) {
  __shared__ double buf[32];
  const float* xr = x + blockIdx.x * D;
  float* yr = y + blockIdx.x * D;
  double s = 0.0;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) s += xr[i];
  const double mean = BlockSumD(s, buf) / static_cast<double>(D);
  double v = 0.0;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) v += (xr[i] - mean) * (xr[i] - mean);
  v = BlockSumD(v, buf);
  const float rstd = ew::InvRms(v / static_cast<double>(D), eps);
  const float m = static_cast<float>(mean);
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x)
    yr[i] = ew::LnScale(xr[i], m, rstd, LoadF32(w, wt, i), LoadF32(b, bt, i));
}

// One thread per (row, head, pair).
__global__ void RotaryKernel(float* __restrict__ x, int64_t n, int64_t row, int heads, int half,
                             const float* __restrict__ cos, const float* __restrict__ sin) {
  const int64_t total = n * heads * half;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    const int j = static_cast<int>(t % half);
    const int64_t ih = t / half;
    const int h = static_cast<int>(ih % heads);
    const int64_t i = ih / heads;
    float* v = x + i * row + static_cast<int64_t>(h) * 2 * half;
    float a = v[j], b = v[j + half];
    ew::RotatePair(a, b, cos[i * half + j], sin[i * half + j]);
    v[j] = a;
    v[j + half] = b;
  }
}

__global__ void GatedActKernel(Act act, const float* gate, const float* __restrict__ up, int64_t n, float* out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = ApplyAct(act, gate[i]) * up[i];
}

__global__ void ActivationKernel(Act act, float* x, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] = ApplyAct(act, x[i]);
}

__global__ void AddKernel(float* __restrict__ y, const float* __restrict__ x, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] += x[i];
}

// Block per output row.
__global__ void GatherRowsKernel(const void* __restrict__ table, DType t, int64_t D, const int32_t* __restrict__ ids,
                                 float* __restrict__ out) {
  const int64_t r = ids[blockIdx.x];
  const char* row = static_cast<const char*>(table) + r * D * static_cast<int64_t>(t == DType::F32 ? 4 : 2);
  float* o = out + blockIdx.x * D;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) o[d] = LoadF32(row, t, d);
}

// Block (x: chunk of the row, y: row i).
__global__ void CopyRowsKernel(const float* __restrict__ src, int64_t ld_src, const int64_t* __restrict__ src_rows,
                               float* __restrict__ dst, int64_t ld_dst, const int64_t* __restrict__ dst_rows,
                               int64_t width) {
  const int64_t i = blockIdx.y;
  const float* s = src + (src_rows ? src_rows[i] : i) * ld_src;
  float* d = dst + (dst_rows ? dst_rows[i] : i) * ld_dst;
  for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < width; j += int64_t(gridDim.x) * blockDim.x)
    d[j] = s[j];
}

__global__ void AddBiasKernel(float* __restrict__ y, int64_t M, int64_t N, const void* __restrict__ bias, DType bt) {
  const int64_t total = M * N;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    y[i] += LoadF32(bias, bt, i % N);
}

__global__ void ToBf16Kernel(const float* __restrict__ x, int64_t n, uint16_t* __restrict__ out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = F32ToBf16(x[i]);
}
// f16: saturate to +-65504 (activations above the f16 range would otherwise become inf).
__global__ void ToF16Kernel(const float* __restrict__ x, int64_t n, __half* __restrict__ out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = __float2half_rn(fminf(fmaxf(x[i], -65504.0f), 65504.0f));
}

}  // namespace

void LaunchRmsNorm(cudaStream_t s, const float* x, int64_t M, int64_t D, const void* w, DType wt, float eps, float* y) {
  if (M <= 0) return;
  RmsNormKernel<<<static_cast<unsigned>(M), kThreads, 0, s>>>(x, D, w, wt, eps, y);
  CheckLaunch("RmsNorm");
}

void LaunchLayerNorm(cudaStream_t s, const float* x, int64_t M, int64_t D, const void* w, DType wt, const void* b,
                     DType bt, float eps, float* y) {
  if (M <= 0) return;
  LayerNormKernel<<<static_cast<unsigned>(M), kThreads, 0, s>>>(x, D, w, wt, b, bt, eps, y);
  CheckLaunch("LayerNorm");
}

void LaunchRotary(cudaStream_t s, float* x, int64_t n, int64_t row, int heads, int hd, const float* cos,
                  const float* sin) {
  const int64_t total = n * heads * (hd / 2);
  if (total <= 0) return;
  RotaryKernel<<<Blocks(total, kThreads), kThreads, 0, s>>>(x, n, row, heads, hd / 2, cos, sin);
  CheckLaunch("Rotary");
}

void LaunchGatedAct(cudaStream_t s, Act act, const float* gate, const float* up, int64_t n, float* out) {
  if (n <= 0) return;
  GatedActKernel<<<Blocks(n, kThreads), kThreads, 0, s>>>(act, gate, up, n, out);
  CheckLaunch("GatedAct");
}

void LaunchActivation(cudaStream_t s, Act act, float* x, int64_t n) {
  if (n <= 0) return;
  ActivationKernel<<<Blocks(n, kThreads), kThreads, 0, s>>>(act, x, n);
  CheckLaunch("Activation");
}

void LaunchAdd(cudaStream_t s, float* y, const float* x, int64_t n) {
  if (n <= 0) return;
  AddKernel<<<Blocks(n, kThreads), kThreads, 0, s>>>(y, x, n);
  CheckLaunch("Add");
}

void LaunchGatherRows(cudaStream_t s, const void* table, DType t, int64_t D, const int32_t* ids, int64_t n, float* out) {
  if (n <= 0 || D <= 0) return;
  if (n > 2147483647) throw Error("GatherRows: too many rows for one launch");
  GatherRowsKernel<<<static_cast<unsigned>(n), kThreads, 0, s>>>(table, t, D, ids, out);
  CheckLaunch("GatherRows");
}

void LaunchCopyRows(cudaStream_t s, const float* src, int64_t ld_src, const int64_t* src_rows, float* dst,
                    int64_t ld_dst, const int64_t* dst_rows, int64_t n, int64_t width) {
  if (n <= 0 || width <= 0) return;
  for (int64_t r0 = 0; r0 < n; r0 += 65535) {  // grid.y is limited to 65535
    const int64_t rows = n - r0 < 65535 ? n - r0 : 65535;
    const dim3 grid(Blocks(width, kThreads) > 64 ? 64 : Blocks(width, kThreads), static_cast<unsigned>(rows));
    CopyRowsKernel<<<grid, kThreads, 0, s>>>(src_rows ? src : src + r0 * ld_src, ld_src, src_rows ? src_rows + r0 : nullptr,
                                              dst_rows ? dst : dst + r0 * ld_dst, ld_dst, dst_rows ? dst_rows + r0 : nullptr,
                                              width);
    CheckLaunch("CopyRows");
  }
}

void LaunchAddBias(cudaStream_t s, float* y, int64_t M, int64_t N, const void* bias, DType bt) {
  if (M * N <= 0) return;
  AddBiasKernel<<<Blocks(M * N, kThreads), kThreads, 0, s>>>(y, M, N, bias, bt);
  CheckLaunch("AddBias");
}

void LaunchConvert(cudaStream_t s, const float* x, int64_t n, DType to, void* out) {
  if (n <= 0) return;
  if (to == DType::BF16) ToBf16Kernel<<<Blocks(n, kThreads), kThreads, 0, s>>>(x, n, static_cast<uint16_t*>(out));
  else if (to == DType::F16) ToF16Kernel<<<Blocks(n, kThreads), kThreads, 0, s>>>(x, n, static_cast<__half*>(out));
  else throw Error("Convert: target must be BF16 or F16");
  CheckLaunch("Convert");
}

}  // namespace starkv::cuda
