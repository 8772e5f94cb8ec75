// y[M,N] = x[M,K] . W[N,K]^T with fp32 accumulation, W on the device in its checkpoint dtype.
//  - M <= kGemvRows (decode): our GEMV, one warp per output column, x kept fp32, W read once.
//  - otherwise cuBLAS when libcublas can be loaded at run time (dlopen; no cuBLAS headers or link-time
//    dependency): x is converted to W's dtype on the device, cublasGemmEx with fp32 compute.
//  - otherwise our kernels: nvcuda::wmma 16x16x16 bf16/f16 tensor-core tiles with fp32 accumulators,
//    or a plain fp32 tiled kernel for F32 weights.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <dlfcn.h>
#include <mma.h>

#include <cstdlib>

#include "cuda_backend.h"
#include "cuda_common.cuh"
#include "gemm.h"

namespace starkv::cuda {
namespace {

// ---- cuBLAS, declared here: these are cuBLAS's public C ABI (cublas_api.h / library_types.h values). ----
using cublasHandle = void*;
using cublasStatus = int;                 // CUBLAS_STATUS_SUCCESS = 0
constexpr int kCublasOpN = 0;             // CUBLAS_OP_N
constexpr int kCublasOpT = 1;             // CUBLAS_OP_T
constexpr int kCudaR32F = 0;              // CUDA_R_32F
constexpr int kCudaR16F = 2;              // CUDA_R_16F
constexpr int kCudaR16BF = 14;            // CUDA_R_16BF
constexpr int kCublasCompute32F = 68;     // CUBLAS_COMPUTE_32F
constexpr int kCublasGemmDefault = -1;    // CUBLAS_GEMM_DEFAULT
using CreateFn = cublasStatus (*)(cublasHandle*);
using DestroyFn = cublasStatus (*)(cublasHandle);
using SetStreamFn = cublasStatus (*)(cublasHandle, cudaStream_t);
using GemmExFn = cublasStatus (*)(cublasHandle, int transa, int transb, int m, int n, int k, const void* alpha,
                                  const void* A, int Atype, int lda, const void* B, int Btype, int ldb,
                                  const void* beta, void* C, int Ctype, int ldc, int computeType, int algo);

// ---- GEMV for small M ----
constexpr int kGemvWarps = 8;

template <DType T>
__device__ inline float Elem(const void* w, int64_t i) {
  return LoadF32(w, T, i);
}

template <DType T>
__global__ void __launch_bounds__(kGemvWarps * 32)
    GemvKernel(const float* __restrict__ x, int M, int64_t K, const void* __restrict__ W, int64_t N,
               float* __restrict__ y, bool vec) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t n = static_cast<int64_t>(blockIdx.x) * kGemvWarps + warp;
  if (n >= N) return;
  float acc[kGemvRows];
#pragma unroll
  for (int m = 0; m < kGemvRows; ++m) acc[m] = 0.0f;
  const int64_t esz = T == DType::F32 ? 4 : 2;
  const char* wr = static_cast<const char*>(W) + n * K * esz;
  int64_t k0 = 0;
  if (vec) {  // 8 weights (and 2 float4 of x per row) per lane per step; K % 8 == 0 and aligned
    for (int64_t k = lane * 8; k < K; k += 32 * 8) {
      float w8[8];
      if (T == DType::F32) {
        const float4 a = *reinterpret_cast<const float4*>(wr + k * 4);
        const float4 b = *reinterpret_cast<const float4*>(wr + k * 4 + 16);
        w8[0] = a.x; w8[1] = a.y; w8[2] = a.z; w8[3] = a.w;
        w8[4] = b.x; w8[5] = b.y; w8[6] = b.z; w8[7] = b.w;
      } else {
        const uint4 raw = *reinterpret_cast<const uint4*>(wr + k * 2);
        // the halves by shifts, not through a pointer to raw (which put it on the stack for bf16 on sm_90)
        const unsigned u[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          const uint16_t h = static_cast<uint16_t>(u[e >> 1] >> (16 * (e & 1)));
          w8[e] = T == DType::BF16 ? Bf16ToF32(h) : F16ToF32(h);
        }
      }
#pragma unroll
      for (int m = 0; m < kGemvRows; ++m) {
        if (m >= M) break;
        const float4 xa = *reinterpret_cast<const float4*>(x + m * K + k);
        const float4 xb = *reinterpret_cast<const float4*>(x + m * K + k + 4);
        float s = acc[m];
        s = fmaf(w8[0], xa.x, s); s = fmaf(w8[1], xa.y, s); s = fmaf(w8[2], xa.z, s); s = fmaf(w8[3], xa.w, s);
        s = fmaf(w8[4], xb.x, s); s = fmaf(w8[5], xb.y, s); s = fmaf(w8[6], xb.z, s); s = fmaf(w8[7], xb.w, s);
        acc[m] = s;
      }
    }
    k0 = K;
  }
  for (int64_t k = k0 + lane; k < K; k += 32) {
    const float wv = Elem<T>(wr, k);
#pragma unroll
    for (int m = 0; m < kGemvRows; ++m)
      if (m < M) acc[m] = fmaf(wv, x[m * K + k], acc[m]);
  }
#pragma unroll
  for (int m = 0; m < kGemvRows; ++m) {
    if (m >= M) break;
    const float s = WarpSumF(acc[m]);
    if (lane == 0) y[m * N + n] = s;
  }
}

// ---- wmma tensor-core GEMM (bf16 / f16 operands, fp32 accumulators) ----
constexpr int kBM = 64, kBN = 64, kBK = 32, kLd = kBK + 8, kLdC = kBN + 4;

template <typename H>
__device__ inline H FromFloat(float f);
template <>
__device__ inline __nv_bfloat16 FromFloat<__nv_bfloat16>(float f) {
  return __float2bfloat16_rn(f);
}
template <>
__device__ inline __half FromFloat<__half>(float f) {
  return __float2half_rn(fminf(fmaxf(f, -65504.0f), 65504.0f));
}

// Block of 4 warps: a 64x64 tile of y; warp (wy, wx) owns 32x32 = 2x2 fragments.
template <typename H>
__global__ void __launch_bounds__(128)
    WmmaGemmKernel(const float* __restrict__ x, int64_t M, int64_t K, const H* __restrict__ W, int64_t N,
                   float* __restrict__ y) {
  using namespace nvcuda;
  __shared__ __align__(32) H As[kBM * kLd];
  __shared__ __align__(32) H Bs[kBN * kLd];
  __shared__ __align__(32) float Cs[kBM * kLdC];
  const int warp = threadIdx.x >> 5, wy = warp >> 1, wx = warp & 1;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kBM, n0 = static_cast<int64_t>(blockIdx.x) * kBN;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> c[2][2];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(c[i][j], 0.0f);
  for (int64_t k0 = 0; k0 < K; k0 += kBK) {
    for (int e = threadIdx.x; e < kBM * kBK; e += blockDim.x) {
      const int r = e / kBK, kk = e % kBK;
      const int64_t gm = m0 + r, gk = k0 + kk, gn = n0 + r;
      As[r * kLd + kk] = FromFloat<H>(gm < M && gk < K ? x[gm * K + gk] : 0.0f);
      Bs[r * kLd + kk] = gn < N && gk < K ? W[gn * K + gk] : FromFloat<H>(0.0f);
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kBK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, H, wmma::row_major> af[2];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, H, wmma::col_major> bf[2];
#pragma unroll
      for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(af[i], As + (wy * 32 + i * 16) * kLd + kk, kLd);
#pragma unroll
      for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(bf[j], Bs + (wx * 32 + j * 16) * kLd + kk, kLd);
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::mma_sync(c[i][j], af[i], bf[j], c[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j)
      wmma::store_matrix_sync(Cs + (wy * 32 + i * 16) * kLdC + wx * 32 + j * 16, c[i][j], kLdC, wmma::mem_row_major);
  __syncthreads();
  for (int e = threadIdx.x; e < kBM * kBN; e += blockDim.x) {
    const int r = e / kBN, cc = e % kBN;
    const int64_t gm = m0 + r, gn = n0 + cc;
    if (gm < M && gn < N) y[gm * N + gn] = Cs[r * kLdC + cc];
  }
}

// ---- plain fp32 tiled GEMM (F32 weights without cuBLAS): 256 threads, 64x64 tile, 4x4 per thread ----
__global__ void __launch_bounds__(256)
    F32GemmKernel(const float* __restrict__ x, int64_t M, int64_t K, const float* __restrict__ W, int64_t N,
                  float* __restrict__ y) {
  __shared__ float As[16][kBM + 1], Bs[16][kBN + 1];
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kBM, n0 = static_cast<int64_t>(blockIdx.x) * kBN;
  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < K; k0 += 16) {
    for (int e = threadIdx.x; e < kBM * 16; e += blockDim.x) {
      const int r = e / 16, kk = e % 16;
      const int64_t gk = k0 + kk;
      As[kk][r] = m0 + r < M && gk < K ? x[(m0 + r) * K + gk] : 0.0f;
      Bs[kk][r] = n0 + r < N && gk < K ? W[(n0 + r) * K + gk] : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < 16; ++kk)
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(As[kk][ty + 16 * i], Bs[kk][tx + 16 * j], acc[i][j]);
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t gm = m0 + ty + 16 * i, gn = n0 + tx + 16 * j;
      if (gm < M && gn < N) y[gm * N + gn] = acc[i][j];
    }
}

bool Aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

}  // namespace

void LaunchGemv(cudaStream_t s, const float* x, int64_t M, int64_t K, const void* W, DType wt, int64_t N, float* y) {
  if (M <= 0 || N <= 0) return;
  if (M > kGemvRows) throw Error("gemv: more rows than kGemvRows");
  const bool vec = K % 8 == 0 && Aligned16(x) && Aligned16(W);
  const unsigned blocks = static_cast<unsigned>((N + kGemvWarps - 1) / kGemvWarps);
  const int m = static_cast<int>(M);
  if (wt == DType::BF16) GemvKernel<DType::BF16><<<blocks, kGemvWarps * 32, 0, s>>>(x, m, K, W, N, y, vec);
  else if (wt == DType::F16) GemvKernel<DType::F16><<<blocks, kGemvWarps * 32, 0, s>>>(x, m, K, W, N, y, vec);
  else GemvKernel<DType::F32><<<blocks, kGemvWarps * 32, 0, s>>>(x, m, K, W, N, y, vec);
  CheckLaunch("Gemv");
}

void LaunchOwnGemm(cudaStream_t s, const float* x, int64_t M, int64_t K, const void* W, DType wt, int64_t N, float* y) {
  if (M <= 0 || N <= 0) return;
  if ((M + kBM - 1) / kBM > 65535) throw Error("gemm: too many rows for one launch");
  const dim3 grid(static_cast<unsigned>((N + kBN - 1) / kBN), static_cast<unsigned>((M + kBM - 1) / kBM));
  if (wt == DType::BF16)
    WmmaGemmKernel<__nv_bfloat16><<<grid, 128, 0, s>>>(x, M, K, static_cast<const __nv_bfloat16*>(W), N, y);
  else if (wt == DType::F16)
    WmmaGemmKernel<__half><<<grid, 128, 0, s>>>(x, M, K, static_cast<const __half*>(W), N, y);
  else
    F32GemmKernel<<<grid, 256, 0, s>>>(x, M, K, static_cast<const float*>(W), N, y);
  CheckLaunch("Gemm");
}

// ---- Gemm: cuBLAS when it loads, else our kernels ----
struct Gemm::Cublas {
  void* lib = nullptr;
  cublasHandle handle = nullptr;
  DestroyFn destroy = nullptr;
  SetStreamFn set_stream = nullptr;
  GemmExFn gemm_ex = nullptr;
};

Gemm::Gemm(void* stream) : stream_(stream) {
  const char* off = std::getenv("STARKV_NO_CUBLAS");
  if (off && *off && std::string(off) != "0") {
    note_ = "cuBLAS disabled by STARKV_NO_CUBLAS";
    return;
  }
  std::string tried;
  for (const char* name : {"libcublas.so.13", "libcublas.so.12", "libcublas.so"}) {
    void* lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char* e = dlerror();
      tried += std::string(tried.empty() ? "" : "; ") + (e ? e : name);
      continue;
    }
    auto create = reinterpret_cast<CreateFn>(dlsym(lib, "cublasCreate_v2"));
    auto destroy = reinterpret_cast<DestroyFn>(dlsym(lib, "cublasDestroy_v2"));
    auto set_stream = reinterpret_cast<SetStreamFn>(dlsym(lib, "cublasSetStream_v2"));
    auto gemm_ex = reinterpret_cast<GemmExFn>(dlsym(lib, "cublasGemmEx"));
    cublasHandle h = nullptr;
    if (!create || !destroy || !set_stream || !gemm_ex) {
      tried += std::string(tried.empty() ? "" : "; ") + name + ": missing entry points";
    } else if (create(&h) != 0 || !h) {
      tried += std::string(tried.empty() ? "" : "; ") + name + ": cublasCreate failed";
    } else if (set_stream(h, static_cast<cudaStream_t>(stream_)) != 0) {
      destroy(h);
      tried += std::string(tried.empty() ? "" : "; ") + name + ": cublasSetStream failed";
    } else {
      blas_ = std::make_unique<Cublas>(Cublas{lib, h, destroy, set_stream, gemm_ex});
      lib_name_ = name;
      return;
    }
    dlclose(lib);
  }
  note_ = "cuBLAS not loaded (" + tried + ")";
}

Gemm::~Gemm() {
  if (blas_) {
    blas_->destroy(blas_->handle);
    // The library stays loaded: cuBLAS may have registered state with the runtime.
  }
}

std::string Gemm::Name() const {
  if (blas_) return "cublas (" + lib_name_ + ")";
  return "wmma (" + note_ + ")";
}

void Gemm::Run(const float* x, int64_t M, int64_t K, const void* W, DType wt, int64_t N, float* y, void* xbuf) {
  cudaStream_t s = static_cast<cudaStream_t>(stream_);
  if (M <= kGemvRows) return LaunchGemv(s, x, M, K, W, wt, N, y);
  if (!blas_) return LaunchOwnGemm(s, x, M, K, W, wt, N, y);
  if (M > 2147483647 || N > 2147483647 || K > 2147483647) throw Error("gemm: dimension above 2^31 for cuBLAS");
  // Column-major view: y^T[N,M] = W[N,K] (col-major K x N, transposed) . x^T (col-major K x M).
  const float alpha = 1.0f, beta = 0.0f;
  const void* B = x;
  int type = kCudaR32F;
  if (wt != DType::F32) {
    LaunchConvert(s, x, M * K, wt, xbuf);
    B = xbuf;
    type = wt == DType::BF16 ? kCudaR16BF : kCudaR16F;
  }
  const int st = blas_->gemm_ex(blas_->handle, kCublasOpT, kCublasOpN, static_cast<int>(N), static_cast<int>(M),
                                static_cast<int>(K), &alpha, W, type, static_cast<int>(K), B, type, static_cast<int>(K),
                                &beta, y, kCudaR32F, static_cast<int>(N), kCublasCompute32F, kCublasGemmDefault);
  if (st != 0) throw Error("cublasGemmEx failed with status " + std::to_string(st) + " (M=" + std::to_string(M) +
                           ", N=" + std::to_string(N) + ", K=" + std::to_string(K) + ")");
}

}  // namespace starkv::cuda
