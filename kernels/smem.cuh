// Shared memory per block beyond the default, for kernels/*.cu and kernels/kv/*.cu alike.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

namespace starkv::cuda {

// What a block gets without asking, its static shared arrays included (every architecture we build for).
constexpr size_t kSmemDefault = 48 * 1024;

// Opts `kernel` in to `dynamic` bytes of dynamic shared memory where they and its `static_bytes` of static
// shared arrays pass kSmemDefault: a GPU refuses such a launch otherwise, even when `dynamic` alone fits.
template <typename Kernel>
cudaError_t AllowDynamicSmem(Kernel kernel, size_t dynamic, size_t static_bytes) {
  if (dynamic + static_bytes <= kSmemDefault) return cudaSuccess;
  return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(dynamic));
}

}  // namespace starkv::cuda
