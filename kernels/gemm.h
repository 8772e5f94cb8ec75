// The backend's matrix multiply (kernels/gemm.cu): cuBLAS loaded at run time when present, else our
// tensor-core kernel; a GEMV for decode-sized M either way. Plain C++ header.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/dtype.h"

namespace starkv::cuda {

constexpr int kGemvRows = 4;  // M at or below which the GEMV serves (decode)

class Gemm {
 public:
  explicit Gemm(void* stream);  // cudaStream_t; tries libcublas.so.13, .so.12, .so (STARKV_NO_CUBLAS=1: skip)
  ~Gemm();
  // "cublas (libcublas.so.12)" or "wmma (cuBLAS not loaded (...))"
  std::string Name() const;
  bool HaveCublas() const { return blas_ != nullptr; }
  // y[M,N] = x[M,K] . W[N,K]^T on the stream. xbuf: device scratch of M*K 2-byte elements (x converted
  // to W's dtype for cuBLAS; unused for F32 weights or the GEMV).
  void Run(const float* x, int64_t M, int64_t K, const void* W, DType wt, int64_t N, float* y, void* xbuf);

 private:
  struct Cublas;
  void* stream_;
  std::unique_ptr<Cublas> blas_;
  std::string lib_name_, note_;
};

}  // namespace starkv::cuda
