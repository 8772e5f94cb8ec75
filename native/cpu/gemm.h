// CPU matrix multiply y[M, N] = x[M, K] . W[N, K]^T (+ bias) with W in bf16/f16/f32.
// Small M (decode): threaded dot-product tiles reading W in its own dtype (memory-bound).
// Large M (prefill): blocks of W rows widened to fp32 once per call, then oneDNN sgemm
// (STARKV_HAVE_DNNL) or the built-in tile kernel; with ctx.bf16 and BF16 weights, x rounded to bf16 once
// and oneDNN's bf16 matmul on the weight rows in place (single-threaded per pool thread, like the sgemm).
#pragma once

#include <cstdint>
#include <string>

#include "core/memory.h"
#include "core/tensor.h"
#include "core/thread_pool.h"

namespace starkv::cpu {

struct GemmContext {
  ThreadPool* pool = nullptr;
  MemoryAccount* account = nullptr;
  Buffer* workspace = nullptr;  // grown on demand, counted as workspace
  int64_t large_m = 20;         // M at or above which the prefill path is taken
  int64_t block_rows = 128;     // weight rows per prefill block
  int64_t block_m = 512;        // rows of x per sgemm call inside a block (cache-sized slabs)
  bool use_dnnl = true;         // false: built-in kernel even when oneDNN is present
  // Prefill with BF16 weights as bf16 x bf16 -> fp32 (x rounded to bf16, fp32 accumulation) through
  // oneDNN's matmul on CPUs with AVX512-BF16 or AMX, about twice the fp32 GEMM rate (ResolveCpuMatmul sets it).
  bool bf16 = false;
};

// The CPU's prefill arithmetic for BF16 weights: "auto" (bf16 where Bf16MatmulFast, else fp32),
// "fp32" (weights widened, fp32 x fp32, the HF fp32 arithmetic) or "bf16" (an error where it is not fast).
// Returns the resolved choice; throws starkv::Error naming a bad value or an unavailable bf16 path.
bool ResolveCpuMatmul(const std::string& choice, bool use_dnnl);
// Whether oneDNN's bf16 matmul runs on a native bf16 kernel here (not its reference code); *impl gets
// the implementation oneDNN picked or why there is none.
bool Bf16MatmulFast(std::string* impl);

void MatMul(GemmContext& ctx, const float* x, int64_t M, const Tensor& W, const Tensor* bias, float* y);

// Plain fp32 GEMM C[M,N] = A[M,K] . B[N,K]^T through the best available path (bench, tests).
void SgemmNT(GemmContext& ctx, int64_t M, int64_t N, int64_t K, const float* A, const float* B, float* C);

// Single-threaded fp32 GEMM on the calling thread (attention blocks inside pool tasks):
// C[M,N] = A[M,K] . op(B), op(B) = B^T for B [N,K] (trans_b) or B for B [K,N]; leading dimensions in
// floats. oneDNN when use_dnnl, else the tile kernel (B^T) or row axpys (B). Deterministic.
void SgemmSingle(bool use_dnnl, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float* C, int64_t ldc);

// Single-threaded bf16 GEMM with fp32 accumulation and output (oneDNN's matmul, primitives cached per
// thread and shape): C[M,N] = A[M,K] . op(B), op(B) = B^T for B [N][K] (trans_b) or B for B [K][N];
// leading dimensions in elements. Throws starkv::Error without oneDNN.
void Bf16GemmSingle(int64_t M, int64_t N, int64_t K, const uint16_t* A, int64_t lda, const uint16_t* B, int64_t ldb,
                    bool trans_b, float* C, int64_t ldc);

// The depth to which a bf16 GEMM's A and B rows are worth zero-padding: a multiple of 32 (one AMX tile
// row) where oneDNN runs its AMX kernel (it is several times slower on a depth of 80 than of 96 there),
// else k itself.
int64_t Bf16PaddedK(int64_t k);

bool HaveDnnl();
// Tells OpenMP (used by oneDNN) how many threads to use from the calling thread (no-op without it).
void SetDnnlThreads(int n);

}  // namespace starkv::cpu
