// Host emulation of the CUDA subset that kernels/kv uses, for checking the kernels' LOGIC on a machine
// without a GPU (run.sh): each block runs as one std::thread per CUDA thread, __syncthreads is a
// barrier, warp shuffles/ballots go through a per-warp slot array and barrier, atomics take a
// mutex, blocks run one after another and launches from several host threads one at a time, as on one
// stream (so __shared__ variables can be plain statics).
//
// STARKV_EMU_ORDER picks how a block's threads interleave: unset or "parallel", freely (the OS decides);
// "forward", "reverse" or "random[:SEED]", one thread at a time (fibers on one host thread, so also
// faster than the OS threads of the parallel mode), switching only where a thread waits at
// __syncthreads, __syncwarp, a shuffle or a ballot (or exits): forward runs the threads of every stretch
// between two barriers in thread order, reverse in the opposite order, random in a seeded random order;
// the blocks of a launch run in grid order, last to first, or in a seeded random order likewise.
// A kernel whose threads are correctly synchronised gives the same bytes under every order (our atomics
// only count, so their order does not show); a missing barrier, a read of another thread's write in the
// same stretch, or of another block's write in the same launch, shows as a difference between orders
// (compare STARKV_EMU_TRACE files, or the results).
// A barrier that not every thread of the block reaches is reported as a deadlock, not hung on. It is NOT a GPU:
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
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>
#include <string>
#include <barrier>
#include <cstdint>
#include <random>
#include <functional>
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
#define __launch_bounds__(...)
struct uint3 { unsigned x = 0, y = 0, z = 0; };
struct dim3 { unsigned x, y, z; dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {} };
inline thread_local uint3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;
typedef int cudaError_t;
enum { cudaSuccess = 0 };
// What CudaErrorText (kernels/cuda_backend.cu) names; the emulator itself never returns these: a fault
// stops the run there.
enum { cudaErrorIllegalAddress = 700, cudaErrorLaunchTimeout = 702, cudaErrorAssert = 710,
       cudaErrorHardwareStackError = 714, cudaErrorIllegalInstruction = 715, cudaErrorMisalignedAddress = 716,
       cudaErrorInvalidAddressSpace = 717, cudaErrorInvalidPc = 718, cudaErrorLaunchFailure = 719 };
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
  if (e == 9) return "invalid configuration argument (emulator: a grid or block size no GPU accepts)";
  return "emu error";
}
inline cudaError_t cudaGetLastError() {
  std::lock_guard<std::mutex> lk(emu::LaunchErrorMu());
  const int e = emu::LaunchError();
  emu::LaunchError() = 0;
  return e;
}
inline cudaError_t cudaGetDeviceCount(int* n) { *n = 1; return 0; }
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int) { std::strcpy(p->name, "host emulator of CUDA blocks/threads, not a GPU"); p->major = 8; p->minor = 0; return 0; }  // as the backend's shim says
namespace emu {
// The device-memory guard (see the top of this file).
struct DeviceGuard;
inline DeviceGuard& Guard();
struct DeviceGuard {
  std::recursive_mutex mu;
  std::map<void*, size_t> ranges;  // mapped device allocations: page-aligned start -> page-rounded bytes
  // Each allocation ends where its pages do (the pointer cudaMalloc returns is 256-aligned, as CUDA's,
  // and at most 255 bytes before the end), and a PROT_NONE guard page follows it: a kernel or copy that
  // goes past the end of a device buffer faults here, where a GPU would corrupt its neighbour.
  struct User { void* base; size_t bytes; };
  std::map<void*, User> users;  // returned pointer -> its mapping and requested size
  static size_t Page() { return static_cast<size_t>(sysconf(_SC_PAGESIZE)); }
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
    bool device = false;  // about to exit: read the maps without their lock
    const char* a = static_cast<char*>(si->si_addr);
    for (auto& [p, n] : Guard().ranges) device |= a >= static_cast<char*>(p) && a < static_cast<char*>(p) + n;
    const char* end = nullptr;  // the end of the allocation whose guard page `a` is in
    size_t bytes = 0;
    for (auto& [q, u] : Guard().users) {
      const char* guard = static_cast<char*>(u.base) + Round(u.bytes);
      if (a >= guard && a < guard + Page()) end = static_cast<char*>(q) + u.bytes, bytes = u.bytes;
    }
    char msg[256];
    const int len =
        end ? std::snprintf(msg, sizeof msg, "\nemu: out of bounds: %p is %zu bytes past the end of a device allocation of "
                                             "%zu bytes (on a GPU this corrupts another buffer or faults); stack:\n",
                            si->si_addr, static_cast<size_t>(a - end), bytes)
        : device ? std::snprintf(msg, sizeof msg, "\nemu: host code touched emulated device memory at %p "
                                                  "(a GPU would fault here too); host stack:\n", si->si_addr)
                 : std::snprintf(msg, sizeof msg, "\nemu: segmentation fault at %p (not emulated device "
                                                  "memory); stack:\n", si->si_addr);
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
  const size_t m = emu::DeviceGuard::Round(n), pg = emu::DeviceGuard::Page();
  std::lock_guard<std::recursive_mutex> lk(g.mu);
  if (g.cap && (m > g.cap || g.used > g.cap - m)) return 2;  // cudaErrorMemoryAllocation: the device is full
  void* q = mmap(nullptr, m + pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (q == MAP_FAILED) return 2;
  mprotect(static_cast<char*>(q) + m, pg, PROT_NONE);  // the guard page past the end
  std::memset(q, 0xCD, m);
  g.ranges[q] = m;
  g.used += m;
  void* user = static_cast<char*>(q) + m - (std::max<size_t>(n, 1) + 255) / 256 * 256;
  g.users[user] = {q, n};
  *p = user;
  return 0;
}
inline cudaError_t cudaFree(void* p) {
  if (!p) return 0;
  auto& g = emu::Guard();
  std::lock_guard<std::recursive_mutex> lk(g.mu);
  auto u = g.users.find(p);
  if (u == g.users.end()) std::abort();  // not a device pointer of ours
  auto it = g.ranges.find(u->second.base);
  munmap(it->first, it->second + emu::DeviceGuard::Page());
  g.used -= it->second;
  g.ranges.erase(it);
  g.users.erase(u);
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
// Shared memory holds garbage when a block starts on a GPU: the emulator fills the dynamic shared memory
// and every registered static __shared__ variable (convert.mjs registers each one the first time its
// declaration runs) with 0xFF bytes (NaN as floats, -1 as integers) before every block, so a kernel that
// reads shared memory before its block wrote it fails here too instead of reading the previous block's
// values. STARKV_EMU_SHARED_FILL=0 turns that off (to tell such a failure from others).
struct SharedRegions {
  std::mutex mu;
  std::vector<std::pair<void*, size_t>> list;
  // Static shared bytes per kernel (registered while that kernel's launch runs; launches run one at a
  // time), which a GPU counts with the dynamic bytes against the per-block limit.
  const void* launching = nullptr;
  std::map<const void*, size_t> per_kernel;
  const bool fill = [] {
    const char* v = std::getenv("STARKV_EMU_SHARED_FILL");
    return !(v && std::string(v) == "0");
  }();
};
inline SharedRegions& SharedList() {
  static SharedRegions r;
  return r;
}
inline bool Shared(void* p, size_t n) {
  auto& r = SharedList();
  std::lock_guard<std::mutex> lk(r.mu);
  r.list.emplace_back(p, n);
  r.per_kernel[r.launching] += n;
  return true;
}
inline void FillShared(unsigned char* dyn, size_t dyn_bytes) {
  auto& r = SharedList();
  if (!r.fill) return;
  std::memset(dyn, 0xFF, dyn_bytes);
  std::lock_guard<std::mutex> lk(r.mu);
  for (auto& [p, n] : r.list) std::memset(p, 0xFF, n);
}
inline thread_local unsigned char* dyn_smem = nullptr;
inline std::mutex atomic_mu;
// STARKV_EMU_ORDER (see the top of this file): 0 parallel, 1 forward, 2 reverse, 3 random.
struct OrderMode { int mode = 0; uint64_t seed = 0; };
inline OrderMode& Order() {  // read from the environment once; tests may set it
  static OrderMode m = [] {
    OrderMode o;
    const char* v = std::getenv("STARKV_EMU_ORDER");
    const std::string s = v ? v : "";
    if (s.empty() || s == "parallel") return o;
    if (s == "forward") o.mode = 1;
    else if (s == "reverse") o.mode = 2;
    else if (s.rfind("random", 0) == 0) {
      o.mode = 3;
      o.seed = s.size() > 7 && s[6] == ':' ? std::strtoull(s.c_str() + 7, nullptr, 10) : 1;
    } else {
      std::fprintf(stderr, "emulator: STARKV_EMU_ORDER=%s is none of parallel, forward, reverse, random[:SEED]\n", s.c_str());
      std::exit(2);
    }
    return o;
  }();
  return m;
}
// A fiber's saved context, and the switch between two. On x86-64 the switch is ours (below): it saves
// the callee-saved registers, MXCSR and the x87 control word on the fiber's own stack and swaps stack
// pointers, with no system call (glibc's swapcontext makes one per switch, for the signal mask: on a
// host where system calls are dear that was most of the ordered modes' time, see kernels/README.md).
// Elsewhere, or with STARKV_EMU_UCONTEXT defined: ucontext.
#if defined(__x86_64__) && !defined(STARKV_EMU_UCONTEXT)
extern "C" void starkv_emu_switch(void** save_sp, void* to_sp);
extern "C" void starkv_emu_fiber_start();
// Weak symbols: this header is included by several translation units of one binary.
asm(R"(.text
  .weak starkv_emu_switch
  .type starkv_emu_switch,@function
starkv_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size starkv_emu_switch, .-starkv_emu_switch
  .weak starkv_emu_fiber_start
  .type starkv_emu_fiber_start,@function
starkv_emu_fiber_start:
  movq %r12, %rdi
  callq *%r13
  ud2
  .size starkv_emu_fiber_start, .-starkv_emu_fiber_start
)");
struct FiberCtx {
  void* sp = nullptr;
  // A fresh context on [stack, stack + size) that calls entry(arg) when first switched to; the frame
  // is the one starkv_emu_switch pops: control words, r15..r12, rbx, rbp, then the return address.
  void Make(void* stack, size_t size, void (*entry)(void*), void* arg) {
    auto top = reinterpret_cast<uintptr_t>(stack) + size;
    top &= ~uintptr_t{15};
    auto* s = reinterpret_cast<uint64_t*>(top - 24);  // the return address: rsp is 16-aligned after ret
    *s = reinterpret_cast<uint64_t>(&starkv_emu_fiber_start);
    *--s = 0;                                      // rbp
    *--s = 0;                                      // rbx
    *--s = reinterpret_cast<uint64_t>(arg);        // r12: the entry's argument
    *--s = reinterpret_cast<uint64_t>(entry);      // r13: the entry
    *--s = 0;                                      // r14
    *--s = 0;                                      // r15
    uint32_t mxcsr;
    uint16_t fpucw;
    asm volatile("stmxcsr %0" : "=m"(mxcsr));
    asm volatile("fnstcw %0" : "=m"(fpucw));
    *--s = uint64_t{mxcsr} | (uint64_t{fpucw} << 32);
    sp = s;
  }
  // Saves the running context in *save (nullptr: it is never resumed) and resumes *to.
  static void Jump(FiberCtx* save, FiberCtx* to) {
    void* dead;
    starkv_emu_switch(save ? &save->sp : &dead, to->sp);
  }
};
#else
struct FiberCtx {
  ucontext_t uc{};
  static void Trampoline(unsigned lo, unsigned hi, unsigned elo, unsigned ehi) {
    auto* arg = reinterpret_cast<void*>((static_cast<uintptr_t>(hi) << 32) | lo);
    auto* entry = reinterpret_cast<void (*)(void*)>((static_cast<uintptr_t>(ehi) << 32) | elo);
    entry(arg);
    std::abort();
  }
  void Make(void* stack, size_t size, void (*entry)(void*), void* arg) {
    const auto a = reinterpret_cast<uintptr_t>(arg), e = reinterpret_cast<uintptr_t>(entry);
    getcontext(&uc);  // returns once: makecontext below gives the context its own entry point
    uc.uc_stack.ss_sp = stack;
    uc.uc_stack.ss_size = size;
    uc.uc_link = nullptr;
    makecontext(&uc, reinterpret_cast<void (*)()>(&Trampoline), 4, static_cast<unsigned>(a & 0xffffffffu),
                static_cast<unsigned>(a >> 32), static_cast<unsigned>(e & 0xffffffffu), static_cast<unsigned>(e >> 32));
  }
  static void Jump(FiberCtx* save, FiberCtx* to) {
    if (save) swapcontext(&save->uc, &to->uc);
    else setcontext(&to->uc);
  }
};
#endif
// One thread of a block at a time (an ordered mode): each CUDA thread is a fiber (FiberCtx) on the one
// host thread that runs the block, and the running fiber hands the block over at each wait, switching
// threadIdx and the warp with it. The fibers' stacks (256 KB each, reserved lazily) are reused across
// launches.
struct Serial {
  static constexpr size_t kStack = size_t(256) << 10;
  std::vector<FiberCtx> ctx;
  FiberCtx main_ctx{};
  std::vector<unsigned> order;  // position -> thread
  std::vector<unsigned> pos;    // thread -> position
  std::vector<char> runnable, done;
  int mode;
  std::mt19937_64 rng;
  unsigned n_done = 0;
  std::function<void(unsigned)> set_thread;  // makes `t` the current CUDA thread (threadIdx, warp)
  std::function<void()> body;                // the kernel for the current thread
  static std::vector<void*>& Stacks() { static std::vector<void*> v; return v; }
  Serial(unsigned nt, int mode_, uint64_t seed)
      : ctx(nt), order(nt), pos(nt), runnable(nt, 1), done(nt, 0), mode(mode_), rng(seed) {
    for (unsigned t = 0; t < nt; ++t) order[t] = mode == 2 ? nt - 1 - t : t;
    if (mode == 3) std::shuffle(order.begin(), order.end(), rng);
    for (unsigned i = 0; i < nt; ++i) pos[order[i]] = i;
    auto& st = Stacks();
    while (st.size() < nt) {
      void* m = mmap(nullptr, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
      if (m == MAP_FAILED) { std::perror("emulator: fiber stack"); std::abort(); }
      st.push_back(m);
    }
  }
  static void Entry(void* p) {
    static_cast<Serial*>(p)->body();  // runs the kernel, drops the barriers and Exits: never returns here
    std::abort();
  }
  // Runs the block: every fiber from its start, the first in the order first; returns when all exited.
  void Run() {
    for (size_t t = 0; t < ctx.size(); ++t) ctx[t].Make(Stacks()[t], kStack, &Entry, this);
    set_thread(order[0]);
    FiberCtx::Jump(&main_ctx, &ctx[order[0]]);
  }
  // The next thread to run after `self` (cyclically in the order; random picks any runnable one), or -1.
  int Next(unsigned self) {
    const unsigned nt = static_cast<unsigned>(order.size());
    if (mode == 3) {
      std::vector<unsigned> r;
      for (unsigned t = 0; t < nt; ++t) if (runnable[t]) r.push_back(t);
      return r.empty() ? -1 : static_cast<int>(r[rng() % r.size()]);
    }
    for (unsigned i = 1; i <= nt; ++i) {
      const unsigned t = order[(pos[self] + i) % nt];
      if (runnable[t]) return static_cast<int>(t);
    }
    return -1;
  }
  // `self` stops (waits or exits): run the next runnable thread; come back when `self` may run again.
  void Switch(unsigned self) {
    const int n = Next(self);
    if (n < 0) {
      if (n_done == order.size()) FiberCtx::Jump(nullptr, &main_ctx);  // the block is finished
      std::fprintf(stderr, "emulator: deadlock: every live thread of the block waits at a barrier that not "
                           "all of its threads reach (a GPU hangs or misbehaves here too)\n");
      std::abort();
    }
    if (static_cast<unsigned>(n) == self) return;
    set_thread(static_cast<unsigned>(n));
    FiberCtx::Jump(done[self] ? nullptr : &ctx[self], &ctx[static_cast<size_t>(n)]);
  }
  void Exit(unsigned self) {
    done[self] = 1;
    runnable[self] = 0;
    ++n_done;
    Switch(self);
  }
};
// __syncthreads' and a warp's barrier: a std::barrier, or in an ordered mode the block's Serial's.
struct Barrier {
  explicit Barrier(unsigned n, Serial* s) : serial(s), expected(n) {
    if (!s) bar = std::make_unique<std::barrier<>>(n);
  }
  void arrive_and_wait() {
    if (bar) return bar->arrive_and_wait();
    const unsigned self = threadIdx.x;
    if (++arrived == expected) Release();
    else {
      serial->runnable[self] = 0;
      waiters.push_back(self);
    }
    serial->Switch(self);
  }
  void arrive_and_drop() {
    if (bar) return bar->arrive_and_drop();
    --expected;
    if (arrived > 0 && arrived == expected) Release();
  }
 private:
  void Release() {
    arrived = 0;
    for (unsigned w : waiters) serial->runnable[w] = 1;
    waiters.clear();
  }
  std::unique_ptr<std::barrier<>> bar;
  Serial* serial;
  unsigned expected, arrived = 0;
  std::vector<unsigned> waiters;
};
// slot: each lane's value in a shuffle or ballot; stamp: the number of that collective (per lane, counted
// in seq) when the lane wrote its slot, so a read can tell a lane that took part in this one from a lane
// that exited or does not exist (a partial last warp), whose value is undefined on a GPU.
struct Warp { std::unique_ptr<Barrier> bar; uint64_t slot[32]; uint64_t stamp[32] = {}; uint64_t seq[32] = {}; };
inline thread_local Warp* my_warp = nullptr;
inline thread_local Barrier* my_block = nullptr;
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
    {  // what a GPU refuses as an invalid configuration (sm_80..sm_90 limits)
      const unsigned long long threads = 1ull * b.x * b.y * b.z;
      if (b.x == 0 || b.y == 0 || b.z == 0 || b.x > 1024 || b.y > 1024 || b.z > 64 || threads > 1024 || g.x == 0 ||
          g.y == 0 || g.z == 0 || g.y > 65535 || g.z > 65535) {
        std::fprintf(stderr, "emulator: launch refused: invalid configuration: grid %ux%ux%u, block %ux%ux%u\n", g.x, g.y,
                     g.z, b.x, b.y, b.z);
        std::lock_guard<std::mutex> lk(LaunchErrorMu());
        LaunchError() = 9;  // cudaErrorInvalidConfiguration
        return;
      }
    }
    std::lock_guard<std::recursive_mutex> one(StreamMutex());
    DeviceAccess access;
    const bool trace = TraceFile() != nullptr;
    if (trace) before_ = Snapshot();
    gridDim = g; blockDim = b;
    const unsigned nt = b.x * b.y * b.z;
    // Dynamic shared memory starts 128-byte aligned, as on a GPU (where a kernel without static shared
    // memory gets the block's window from its start; our kernels declare __align__(128) and wmma needs 32).
    std::vector<unsigned char> sm_buf(smem + 16 + 128);
    unsigned char* const sm_base = sm_buf.data() + (128 - reinterpret_cast<uintptr_t>(sm_buf.data()) % 128) % 128;
    const size_t sm_size = smem + 16;
    const uint64_t launch_no = launches_++;  // an ordered mode's random seed varies per launch, reproducibly
    {
      auto& r = SharedList();
      std::lock_guard<std::mutex> lk(r.mu);
      r.launching = reinterpret_cast<const void*>(kernel);
    }
    // The blocks run one after another: in grid order, except that reverse mode runs them last to first and
    // random mode in a seeded random order, since a GPU runs them in no order at all: a kernel whose block
    // reads what another block of the same launch wrote (without atomics) then writes other bytes in
    // forward and reverse order, and the race check names it.
    const uint64_t n_blocks = uint64_t{g.x} * g.y * g.z;
    std::vector<uint64_t> shuffled;
    if (Order().mode == 3) {
      shuffled.resize(n_blocks);
      for (uint64_t i = 0; i < n_blocks; ++i) shuffled[i] = i;
      uint64_t st = Order().seed * 0x9E3779B97F4A7C15ull + launch_no * 7919ull + 1;
      for (uint64_t i = n_blocks; i > 1; --i) {  // Fisher-Yates with splitmix64
        st += 0x9E3779B97F4A7C15ull;
        uint64_t z = st;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        std::swap(shuffled[i - 1], shuffled[(z ^ (z >> 31)) % i]);
      }
    }
    for (uint64_t bi = 0; bi < n_blocks; ++bi) {
      const uint64_t lin = Order().mode == 2 ? n_blocks - 1 - bi : Order().mode == 3 ? shuffled[bi] : bi;
      const unsigned bx = static_cast<unsigned>(lin % g.x), by = static_cast<unsigned>(lin / g.x % g.y),
                     bz = static_cast<unsigned>(lin / (uint64_t{g.x} * g.y));
      FillShared(sm_base, sm_size);
      std::unique_ptr<Serial> serial;
      if (Order().mode)
        serial = std::make_unique<Serial>(nt, Order().mode,
                                          Order().seed * 0x9E3779B97F4A7C15ull + launch_no * 1000003ull + (bz * g.y + by) * g.x + bx);
      Barrier block(nt, serial.get());
      std::vector<Warp> warps((nt + 31) / 32);
      for (unsigned w = 0; w < warps.size(); ++w) warps[w].bar = std::make_unique<Barrier>(std::min(32u, nt - 32 * w), serial.get());
      if (serial) {  // one host thread, a fiber per CUDA thread
        blockIdx.x = bx; blockIdx.y = by; blockIdx.z = bz;
        dyn_smem = sm_base; my_block = &block;
        serial->set_thread = [&warps](unsigned t) {
          threadIdx.x = t; threadIdx.y = 0; threadIdx.z = 0;
          my_warp = &warps[t / 32];
        };
        serial->body = [&] {
          const unsigned t = threadIdx.x;
          kernel(args...);
          my_warp->bar->arrive_and_drop();
          block.arrive_and_drop();
          serial->Exit(t);
        };
        serial->Run();
        continue;
      }
      std::vector<std::thread> th;
      for (unsigned t = 0; t < nt; ++t)
        th.emplace_back([&, t] {
          threadIdx.x = t; threadIdx.y = 0; threadIdx.z = 0; blockIdx.x = bx; blockIdx.y = by; blockIdx.z = bz;
          dyn_smem = sm_base; my_warp = &warps[t / 32]; my_block = &block;
          kernel(args...);
          my_warp->bar->arrive_and_drop();
          block.arrive_and_drop();
        });
      for (auto& x : th) x.join();
    }
    {  // static + dynamic shared memory against the per-block limits (statics are known once a block ran)
      size_t stat = 0, optin = 0;
      {
        auto& r = SharedList();
        std::lock_guard<std::mutex> lk(r.mu);
        stat = r.per_kernel[reinterpret_cast<const void*>(kernel)];
        r.launching = nullptr;
      }
      {
        std::lock_guard<std::mutex> lk(SmemMu());
        auto it = SmemOptIn().find(reinterpret_cast<const void*>(kernel));
        if (it != SmemOptIn().end()) optin = it->second;
      }
      const size_t limit = optin ? SmemMax() : 48 * 1024;
      if (stat + smem > limit) {
        std::fprintf(stderr, "emulator: a GPU refuses this launch: %zu bytes of static and %zu of dynamic shared memory, "
                     "above the block's %zu\n", stat, smem, limit);
        std::lock_guard<std::mutex> lk(LaunchErrorMu());
        LaunchError() = 1;
      }
    }
    if (trace) Trace(reinterpret_cast<const void*>(kernel));
  }
  // STARKV_EMU_TRACE=FILE: after each launch, one line with the launch number, the kernel (its address
  // relative to an inline function of this header, stable across runs of one binary), the grid, how many
  // device allocations the launch changed and a hash of the bytes it changed (offset in the allocation and
  // new value of each changed 8-byte word; bytes it left alone do not count, so a buffer that other host
  // threads also write does not make two runs differ), so that two runs of one binary can be compared
  // launch by launch (where several host threads launch, compare the lines as sets).
  static std::FILE* TraceFile() {
    static std::FILE* f = [] {
      const char* path = std::getenv("STARKV_EMU_TRACE");
      return path && *path ? std::fopen(path, "w") : nullptr;
    }();
    return f;
  }
  static std::map<void*, std::vector<uint64_t>> Snapshot() {
    auto& gd = Guard();
    std::lock_guard<std::recursive_mutex> lk(gd.mu);
    std::map<void*, std::vector<uint64_t>> out;
    for (auto& [p, n] : gd.ranges) {
      const auto* w = static_cast<const uint64_t*>(p);
      out[p].assign(w, w + n / 8);
    }
    return out;
  }
  inline static std::map<void*, std::vector<uint64_t>> before_;
  inline static uint64_t launches_ = 0;  // all kernels' launches (under StreamMutex)
  void Trace(const void* kernel) const {
    static uint64_t seq = 0;
    uint64_t changed = 0, hash = 0;
    {
      auto& gd = Guard();
      std::lock_guard<std::recursive_mutex> lk(gd.mu);
      for (auto& [p, n] : gd.ranges) {
        const auto* w = static_cast<const uint64_t*>(p);
        auto it = before_.find(p);
        const std::vector<uint64_t>* old = it == before_.end() ? nullptr : &it->second;
        uint64_t h = 1469598103934665603ull;
        bool any = false;
        for (size_t i = 0; i < n / 8; ++i)
          if (!old || (*old)[i] != w[i]) {
            any = true;
            h = ((h ^ i) * 1099511628211ull ^ w[i]) * 1099511628211ull;
          }
        if (any) {
          ++changed;
          hash += h * 0x9E3779B97F4A7C15ull;
        }
      }
    }
    before_.clear();
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
namespace emu {
// A shuffle that reads a lane which did not take part (it exited, or lies past the block's last thread)
// gets an undefined value on a GPU: stop the run and say so.
[[noreturn]] inline void ShflFromAbsentLane(int lane, int src) {
  std::fprintf(stderr, "emu: a warp shuffle in block (%u,%u,%u), thread %u (lane %d) reads lane %d, which did not take "
               "part (exited, or past the block's last thread): undefined on a GPU\n", blockIdx.x, blockIdx.y,
               blockIdx.z, threadIdx.x, lane, src);
  std::abort();
}
}  // namespace emu
template <typename T> T EmuShfl(T v, int src_lane_fn_lane, bool valid) {
  auto* w = emu::my_warp; const int lane = threadIdx.x & 31;
  const uint64_t n = ++w->seq[lane];
  uint64_t bits = 0; std::memcpy(&bits, &v, sizeof(T)); w->slot[lane] = bits; w->stamp[lane] = n;
  w->bar->arrive_and_wait();
  T r = v;
  if (valid) {
    if (w->stamp[src_lane_fn_lane] != n) emu::ShflFromAbsentLane(lane, src_lane_fn_lane);
    std::memcpy(&r, &w->slot[src_lane_fn_lane], sizeof(T));
  }
  w->bar->arrive_and_wait();
  return r;
}
template <typename T> T __shfl_down_sync(unsigned, T v, int o) { const int l = threadIdx.x & 31; return EmuShfl(v, l + o, l + o < 32); }
template <typename T> T __shfl_xor_sync(unsigned, T v, int o) { const int l = threadIdx.x & 31; return EmuShfl(v, l ^ o, true); }
inline unsigned __ballot_sync(unsigned, bool p) {
  auto* w = emu::my_warp; const int lane = threadIdx.x & 31;
  const uint64_t n = ++w->seq[lane];
  w->slot[lane] = p ? 1 : 0; w->stamp[lane] = n; w->bar->arrive_and_wait();
  // exited lanes and lanes past the block's end contribute 0 (as on a GPU), not what they last wrote
  unsigned m = 0; for (int i = 0; i < 32; ++i) m |= (w->stamp[i] == n && w->slot[i] ? 1u : 0u) << i;
  w->bar->arrive_and_wait(); return m;
}
inline int __popc(unsigned x) { return __builtin_popcount(x); }
template <typename T, typename U> T atomicAdd(T* p, U v) { std::lock_guard<std::mutex> g(emu::atomic_mu); T o = *p; *p = o + static_cast<T>(v); return o; }
