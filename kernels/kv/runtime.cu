// Device discovery and plain memory moves for the KV kernels' callers (tests, the engine wiring).
#include "cuda_backend.h"
#include "kv_common.cuh"

namespace starkv::cuda::kv {
using detail::Check;

// The backend's answer, so that both say why the same way ("no NVIDIA driver found" where the runtime
// only says the driver is insufficient).
int DeviceCount(std::string* reason) { return CountDevices(reason); }

std::string DeviceName(int device) {
  cudaDeviceProp p{};
  Check(cudaGetDeviceProperties(&p, device), "cudaGetDeviceProperties");
  return std::string(p.name) + " (sm_" + std::to_string(p.major) + std::to_string(p.minor) + ")";
}

void* DeviceAlloc(size_t bytes) {
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
  if (e != cudaSuccess) {
    cudaGetLastError();
    throw CudaKvError("CUDA out of memory or error allocating " + std::to_string(bytes) + " bytes for KV kernels: " +
                      ::starkv::cuda::CudaErrorText(e));
  }
  return p;
}

void DeviceFree(void* p) {
  if (p) cudaFree(p);
}

void CopyToDevice(void* dst, const void* src, size_t bytes) {
  if (bytes) Check(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "copy to device");
}
void CopyToHost(void* dst, const void* src, size_t bytes) {
  if (bytes) Check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "copy to host");
}
void DeviceMemset(void* dst, int value, size_t bytes) {
  if (bytes) Check(cudaMemset(dst, value, bytes), "memset");
}
void Synchronize(void* stream) { Check(cudaStreamSynchronize(detail::Stream(stream)), "stream synchronize"); }

}  // namespace starkv::cuda::kv
