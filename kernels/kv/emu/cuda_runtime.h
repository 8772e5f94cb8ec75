// Host emulation of the CUDA subset that kernels/kv uses, for checking the kernels' LOGIC on a machine
// without a GPU (run.sh): each block runs as one std::thread per CUDA thread, __syncthreads is a
// std::barrier, warp shuffles/ballots go through a per-warp slot array and barrier, atomics take a
// mutex, blocks run one after another and launches from several host threads one at a time, as on one
// stream (so __shared__ variables can be plain statics). It is NOT a GPU:
// it says nothing about the memory model, occupancy, shared-memory limits, the device math library or
// speed. Never built into the engine.
//
// Device memory is guarded: cudaMalloc maps whole pages that host code cannot touch (PROT_NONE) except
// while an emulated runtime call or kernel launch runs, so a host read or write of a device buffer
// (which a real GPU would also refuse, with a crash) stops the run with a SIGSEGV report naming the
// address instead of passing unnoticed. Misses are possible (another host thread touching device memory
// while a kernel runs); false reports are not.
#pragma once
#include <execinfo.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>
#include <string>
#include <barrier>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <cmath>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
struct uint3 { unsigned x = 0, y = 0, z = 0; };
struct dim3 { unsigned x, y, z; dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {} };
inline thread_local uint3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;
typedef int cudaError_t;
enum { cudaSuccess = 0 };
enum cudaMemcpyKind { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize };
typedef struct CUstream_st* cudaStream_t;
struct cudaDeviceProp { char name[256]; int major, minor; };
namespace emu {
// The last launch error (as a GPU's sticky-free launch errors: cudaGetLastError returns and clears it).
inline std::mutex& LaunchErrorMu() { static std::mutex m; return m; }
inline int& LaunchError() { static int e = 0; return e; }
inline std::string& LaunchErrorText() { static std::string t; return t; }
}  // namespace emu
inline const char* cudaGetErrorString(cudaError_t e) {
  if (e == 1) return "invalid argument (emulator: a launch asked for more dynamic shared memory than allowed)";
  return "emu error";
}
inline cudaError_t cudaGetLastError() {
  std::lock_guard<std::mutex> lk(emu::LaunchErrorMu());
  const int e = emu::LaunchError();
  emu::LaunchError() = 0;
  return e;
}
inline cudaError_t cudaGetDeviceCount(int* n) { *n = 1; return 0; }
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int) { std::strcpy(p->name, "host emulator of CUDA blocks/threads, not a GPU"); p->major = 0; p->minor = 0; return 0; }
namespace emu {
// The device-memory guard (see the top of this file).
struct DeviceGuard {
  std::recursive_mutex mu;
  std::map<void*, size_t> ranges;  // mapped device allocations (page-rounded)
  int open = 0;
  // Emulated device size: STARKV_EMU_DEVICE_BYTES (0 or unset: no limit, reported as 16 GiB free of 32);
  // cudaMalloc beyond it fails as a full GPU would (cudaErrorMemoryAllocation).
  size_t used = 0;
  size_t cap = [] {
    const char* v = std::getenv("STARKV_EMU_DEVICE_BYTES");
    return v ? static_cast<size_t>(std::strtoull(v, nullptr, 10)) : size_t(0);
  }();
  static size_t Round(size_t n) {
    const size_t pg = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    return (std::max<size_t>(n, 1) + pg - 1) / pg * pg;
  }
  void Protect(int prot) {
    for (auto& [p, n] : ranges) mprotect(p, n, prot);
  }
  static void OnFault(int, siginfo_t* si, void*) {
    char msg[160];
    const int len = std::snprintf(msg, sizeof msg, "\nemu: host code touched emulated device memory at %p "
                                                   "(a GPU would fault here too); host stack:\n", si->si_addr);
    if (write(2, msg, len > 0 ? static_cast<size_t>(len) : 0) < 0) {}
    void* frames[48];
    backtrace_symbols_fd(frames, backtrace(frames, 48), 2);
    _exit(86);
  }
  DeviceGuard() {
    struct sigaction sa {};
    sa.sa_sigaction = &OnFault;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, nullptr);
  }
};
inline DeviceGuard& Guard() {
  static DeviceGuard g;
  return g;
}
// One emulated stream: copies, fills and launches from any host thread run one at a time, in the order
// they are called (a GPU stream runs its work in order; the engine compresses layers on several host
// threads, and gridDim, blockDim and the __shared__ statics are shared by all launches).
inline std::recursive_mutex& StreamMutex() {
  static std::recursive_mutex m;
  return m;
}
// Device memory is host-accessible while one of these lives (an emulated runtime call or launch).
struct DeviceAccess {
  DeviceAccess() {
    auto& g = Guard();
    g.mu.lock();
    if (g.open++ == 0) g.Protect(PROT_READ | PROT_WRITE);
    g.mu.unlock();
  }
  ~DeviceAccess() {
    auto& g = Guard();
    g.mu.lock();
    if (--g.open == 0) g.Protect(PROT_NONE);
    g.mu.unlock();
  }
};
}  // namespace emu
inline cudaError_t cudaMalloc(void** p, size_t n) {
  emu::DeviceAccess a;
  auto& g = emu::Guard();
  const size_t m = emu::DeviceGuard::Round(n);
  std::lock_guard<std::recursive_mutex> lk(g.mu);
  if (g.cap && (m > g.cap || g.used > g.cap - m)) return 2;  // cudaErrorMemoryAllocation: the device is full
  void* q = mmap(nullptr, m, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (q == MAP_FAILED) return 2;
  std::memset(q, 0xCD, m);
  g.ranges[q] = m;
  g.used += m;
  *p = q;
  return 0;
}
inline cudaError_t cudaFree(void* p) {
  if (!p) return 0;
  auto& g = emu::Guard();
  std::lock_guard<std::recursive_mutex> lk(g.mu);
  auto it = g.ranges.find(p);
  if (it == g.ranges.end()) std::abort();  // not a device pointer of ours
  munmap(it->first, it->second);
  g.used -= it->second;
  g.ranges.erase(it);
  return 0;
}
inline cudaError_t cudaMemcpy(void* d, const void* s, size_t n, cudaMemcpyKind) {
  std::lock_guard<std::recursive_mutex> one(emu::StreamMutex());
  emu::DeviceAccess a;
  std::memcpy(d, s, n);
  return 0;
}
inline cudaError_t cudaMemset(void* d, int v, size_t n) {
  std::lock_guard<std::recursive_mutex> one(emu::StreamMutex());
  emu::DeviceAccess a;
  std::memset(d, v, n);
  return 0;
}
inline cudaError_t cudaMemsetAsync(void* d, int v, size_t n, cudaStream_t = nullptr) { return cudaMemset(d, v, n); }
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return 0; }
namespace emu {
// Dynamic shared memory per block, as the GPUs we build for allow it: 48 KB without asking; more only up
// to what cudaFuncSetAttribute(MaxDynamicSharedMemorySize) raised for that kernel, and never above
// STARKV_EMU_SMEM_MAX bytes (default 101376 = 99 KB, sm_86/sm_89's opt-in limit, the smallest of ours).
inline size_t SmemMax() {
  static const size_t m = [] {
    const char* v = std::getenv("STARKV_EMU_SMEM_MAX");
    return v && *v ? static_cast<size_t>(std::strtoull(v, nullptr, 10)) : size_t(101376);
  }();
  return m;
}
inline std::mutex& SmemMu() { static std::mutex m; return m; }
inline std::map<const void*, size_t>& SmemOptIn() { static std::map<const void*, size_t> m; return m; }
}  // namespace emu
template <typename F> cudaError_t cudaFuncSetAttribute(F f, cudaFuncAttribute, int v) {
  if (v < 0 || static_cast<size_t>(v) > emu::SmemMax()) return 1;  // cudaErrorInvalidValue, as a GPU answers
  std::lock_guard<std::mutex> lk(emu::SmemMu());
  emu::SmemOptIn()[reinterpret_cast<const void*>(f)] = static_cast<size_t>(v);
  return 0;
}

namespace emu {
inline thread_local unsigned char* dyn_smem = nullptr;
inline std::mutex atomic_mu;
struct Warp { std::unique_ptr<std::barrier<>> bar; uint64_t slot[32]; };
inline thread_local Warp* my_warp = nullptr;
inline thread_local std::barrier<>* my_block = nullptr;
struct Launcher {
  dim3 g, b; size_t smem;
  Launcher(dim3 g_, dim3 b_, size_t s = 0, cudaStream_t = nullptr) : g(g_), b(b_), smem(s) {}
  template <typename K, typename... A> void run(K kernel, A... args) {
    if (smem > 48 * 1024) {  // a GPU refuses the launch (invalid argument) unless the kernel opted in
      size_t allowed = 48 * 1024;
      {
        std::lock_guard<std::mutex> lk(SmemMu());
        auto it = SmemOptIn().find(reinterpret_cast<const void*>(kernel));
        if (it != SmemOptIn().end()) allowed = it->second;
      }
      if (smem > allowed || smem > SmemMax()) {
        std::fprintf(stderr, "emulator: launch refused: %zu bytes of dynamic shared memory, %zu allowed for this kernel\n",
                     smem, allowed < SmemMax() ? allowed : SmemMax());
        std::lock_guard<std::mutex> lk(LaunchErrorMu());
        LaunchError() = 1;
        return;
      }
    }
    std::lock_guard<std::recursive_mutex> one(StreamMutex());
    DeviceAccess access;
    const bool trace = TraceFile() != nullptr;
    if (trace) before_ = RangeHashes();
    gridDim = g; blockDim = b;
    const unsigned nt = b.x * b.y * b.z;
    std::vector<unsigned char> sm(smem + 16);
    for (unsigned bz = 0; bz < g.z; ++bz) for (unsigned by = 0; by < g.y; ++by) for (unsigned bx = 0; bx < g.x; ++bx) {
      std::barrier<> block(nt);
      std::vector<Warp> warps((nt + 31) / 32);
      for (unsigned w = 0; w < warps.size(); ++w) warps[w].bar = std::make_unique<std::barrier<>>(std::min(32u, nt - 32 * w));
      std::vector<std::thread> th;
      for (unsigned t = 0; t < nt; ++t)
        th.emplace_back([&, t] {
          threadIdx.x = t; threadIdx.y = 0; threadIdx.z = 0; blockIdx.x = bx; blockIdx.y = by; blockIdx.z = bz;
          dyn_smem = sm.data(); my_warp = &warps[t / 32]; my_block = &block;
          kernel(args...);
          my_warp->bar->arrive_and_drop();
          block.arrive_and_drop();
        });
      for (auto& x : th) x.join();
    }
    if (trace) Trace(reinterpret_cast<const void*>(kernel));
  }
  // STARKV_EMU_TRACE=FILE: after each launch, one line with the launch number, the kernel (its address
  // relative to an inline function of this header, stable across runs of one binary), the grid, how many
  // device allocations the launch changed and a hash of their bytes, so that two runs of one binary can
  // be compared launch by launch (where several host threads launch, compare the lines as sets).
  static std::FILE* TraceFile() {
    static std::FILE* f = [] {
      const char* path = std::getenv("STARKV_EMU_TRACE");
      return path && *path ? std::fopen(path, "w") : nullptr;
    }();
    return f;
  }
  static std::map<void*, uint64_t> RangeHashes() {
    auto& gd = Guard();
    std::lock_guard<std::recursive_mutex> lk(gd.mu);
    std::map<void*, uint64_t> out;
    for (auto& [p, n] : gd.ranges) {
      const auto* w = static_cast<const uint64_t*>(p);
      uint64_t h = 1469598103934665603ull ^ n;
      for (size_t i = 0; i < n / 8; ++i) h = (h ^ w[i]) * 1099511628211ull;
      out[p] = h;
    }
    return out;
  }
  inline static std::map<void*, uint64_t> before_;
  void Trace(const void* kernel) const {
    static uint64_t seq = 0;
    uint64_t changed = 0, hash = 0;
    for (auto& [p, h] : RangeHashes()) {
      auto it = before_.find(p);
      if (it == before_.end() || it->second != h) {
        ++changed;
        hash += h * 0x9E3779B97F4A7C15ull;
      }
    }
    const auto rel = reinterpret_cast<intptr_t>(kernel) - reinterpret_cast<intptr_t>(&Guard);
    std::fprintf(TraceFile(), "%llu %lld %ux%ux%u/%u %llu %016llx\n", static_cast<unsigned long long>(seq++),
                 static_cast<long long>(rel), g.x, g.y, g.z, b.x, static_cast<unsigned long long>(changed),
                 static_cast<unsigned long long>(hash));
    std::fflush(TraceFile());
  }
};
}  // namespace emu
inline void __syncthreads() { emu::my_block->arrive_and_wait(); }
inline void __syncwarp(unsigned = 0xffffffffu) { emu::my_warp->bar->arrive_and_wait(); }
template <typename T> T EmuShfl(T v, int src_lane_fn_lane, bool valid) {
  auto* w = emu::my_warp; const int lane = threadIdx.x & 31;
  uint64_t bits = 0; std::memcpy(&bits, &v, sizeof(T)); w->slot[lane] = bits;
  w->bar->arrive_and_wait();
  T r = v;
  if (valid) std::memcpy(&r, &w->slot[src_lane_fn_lane], sizeof(T));
  w->bar->arrive_and_wait();
  return r;
}
template <typename T> T __shfl_down_sync(unsigned, T v, int o) { const int l = threadIdx.x & 31; return EmuShfl(v, l + o, l + o < 32); }
template <typename T> T __shfl_xor_sync(unsigned, T v, int o) { const int l = threadIdx.x & 31; return EmuShfl(v, l ^ o, true); }
inline unsigned __ballot_sync(unsigned, bool p) {
  auto* w = emu::my_warp; const int lane = threadIdx.x & 31;
  w->slot[lane] = p ? 1 : 0; w->bar->arrive_and_wait();
  unsigned m = 0; for (int i = 0; i < 32; ++i) m |= (w->slot[i] ? 1u : 0u) << i;
  w->bar->arrive_and_wait(); return m;
}
inline int __popc(unsigned x) { return __builtin_popcount(x); }
template <typename T, typename U> T atomicAdd(T* p, U v) { std::lock_guard<std::mutex> g(emu::atomic_mu); T o = *p; *p = o + static_cast<T>(v); return o; }
