// Host-emulation stand-ins (kernels/emu/run.sh only; never built into the engine): what kernels/*.cu
// use beyond kernels/kv/emu/cuda_runtime.h.
#pragma once
#include <atomic>
#include <chrono>
#include "cuda_runtime.h"
#define __align__(n) __attribute__((aligned(n)))
struct float4 { float x, y, z, w; };
struct uint4 { unsigned x, y, z, w; };
template <typename T> T __shfl_sync(unsigned, T v, int src) { return EmuShfl(v, src & 31, true); }  // srcLane mod warpSize, as CUDA
inline cudaError_t cudaMemcpyAsync(void* d, const void* s, size_t n, cudaMemcpyKind k, cudaStream_t = nullptr) {
  return cudaMemcpy(d, s, n, k);  // guarded (cuda_runtime.h)
}
constexpr int cudaErrorMemoryAllocation = 2;
constexpr int cudaErrorInsufficientDriver = 35;  // CountDevices tells "no driver" from "old driver" by it
inline cudaError_t cudaRuntimeGetVersion(int* v) { *v = 13000; return 0; }
constexpr unsigned cudaStreamNonBlocking = 1;
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) { *s = nullptr; return 0; }
inline cudaError_t cudaStreamDestroy(cudaStream_t) { return 0; }
inline cudaError_t cudaGetDevice(int* d) { *d = 0; return 0; }
// The calls that make a real runtime create a device's primary context (a few hundred MB of the GPU, kept
// for the process), counted: errors_test checks that QueryCudaInfo() without free memory makes none.
inline std::atomic<long>& EmuContextCalls() {
  static std::atomic<long> n{0};
  return n;
}
extern "C" __attribute__((weak, used)) long starkv_emu_context_calls() { return EmuContextCalls().load(); }
inline cudaError_t cudaSetDevice(int) { ++EmuContextCalls(); return 0; }
inline cudaError_t cudaMemGetInfo(size_t* f, size_t* t) {  // the emulated device size when one is set
  ++EmuContextCalls();
  auto& g = emu::Guard();
  std::lock_guard<std::recursive_mutex> lk(g.mu);
  *t = g.cap ? g.cap : size_t(1) << 35;
  *f = g.cap ? g.cap - g.used : size_t(1) << 34;
  return 0;
}
// Events as host timestamps: emulated launches and copies finish before they return, so the time
// between two records is the emulated work queued between them.
struct CUevent_st { std::chrono::steady_clock::time_point t; };
typedef struct CUevent_st* cudaEvent_t;
inline cudaError_t cudaEventCreate(cudaEvent_t* e) { *e = new CUevent_st{std::chrono::steady_clock::now()}; return 0; }
inline cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) { if (e) e->t = std::chrono::steady_clock::now(); return 0; }
inline cudaError_t cudaEventSynchronize(cudaEvent_t) { return 0; }
inline cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
  *ms = std::chrono::duration<float, std::milli>(b->t - a->t).count();
  return 0;
}
inline cudaError_t cudaEventDestroy(cudaEvent_t e) { delete e; return 0; }
struct EmuDeviceProp { char name[256]; int major, minor; size_t totalGlobalMem; };
inline cudaError_t EmuGetDeviceProperties(EmuDeviceProp* p, int) {
  std::strcpy(p->name, "host emulator of CUDA blocks/threads, not a GPU");
  p->major = 8;  // what the backend needs to accept it
  p->minor = 0;
  p->totalGlobalMem = emu::Guard().cap ? emu::Guard().cap : size_t(1) << 35;
  return 0;
}
#define cudaDeviceProp EmuDeviceProp
#define cudaGetDeviceProperties EmuGetDeviceProperties
#include "cublas_emu.h"  // cuBLAS as documented, behind emu::Dlopen (convert.mjs rewrites the dl* calls)
