// Host-emulation stand-ins (kernels/emu/run.sh only; never built into the engine).
#pragma once
#include "cuda_runtime.h"
#define __launch_bounds__(x)
template <typename T> T __shfl_sync(unsigned, T v, int src) { return EmuShfl(v, src, true); }
inline cudaError_t cudaMemcpyAsync(void* d, const void* s, size_t n, cudaMemcpyKind, cudaStream_t = nullptr) { std::memcpy(d, s, n); return 0; }
struct float4 { float x, y, z, w; };
struct uint4 { unsigned x, y, z, w; };
#define __align__(n) __attribute__((aligned(n)))
