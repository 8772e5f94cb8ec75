// Checks the host emulation of CUDA blocks that kernels/emu/run.sh and kernels/kv/emu/run.sh check the
// CUDA kernels with (kernels/kv/emu/cuda_runtime.h), in particular its ordered modes (STARKV_EMU_ORDER):
// a correctly synchronised kernel (shared-memory tree reduction, warp shuffles, a ballot, threads that
// exit early) gives the same result in every order, while a kernel with a missing __syncthreads gives
// different results in forward and reverse order, which is what makes the modes a race check; shared
// memory is garbage (0xFF bytes) at every block start, as on a GPU, not what the last block left; a
// kernel writing past the end of a device buffer is stopped with a report; a
// warp barrier that one thread skips is reported as a deadlock instead of hanging; launches no GPU accepts
// (over 1024 threads a block, an empty grid, static + dynamic shared memory above the block's limit) are
// refused; dynamic shared memory starts 128-byte aligned; a
// wmma load from a pointer that is not 32-byte aligned stops the run; a shuffle reading a lane that
// exited stops it too, and a ballot counts only the lanes still there; reverse and random order run a
// launch's blocks last to first or shuffled, so a block reading another block's write shows; and the emulated cuBLAS
// (kernels/emu/shim/cublas_emu.h) computes cublasGemmEx as documented (column-major, op(A), leading
// dimensions, beta = 0 not reading C) and refuses what cuBLAS refuses. Plain C++ (no GPU, no nvcc).
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "../../kernels/kv/emu/cuda_runtime.h"
#include "../../kernels/emu/shim/cublas_emu.h"
#include "../../kernels/emu/shim/mma.h"

namespace {
int failures = 0;
void Check(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
  if (!ok) ++failures;
}

constexpr unsigned kThreads = 96;  // three warps, the last one full; odd sizes below

// Sum of x[0..n) per block, synchronised correctly: strided partial sums, a tree in shared memory, the
// last 32 by shuffles; threads past `live` exit before the first barrier.
void SumKernel(const float* x, int n, unsigned live, float* out, unsigned* ballots) {
  static float s[kThreads];
  const unsigned t = threadIdx.x;
  if (t >= live) return;
  float v = 0;
  for (int i = static_cast<int>(t); i < n; i += static_cast<int>(live)) v += x[i];
  s[t] = v;
  __syncthreads();
  if (t < 32) {
    float w = 0;
    for (unsigned j = t; j < live; j += 32) w += s[j];
    for (int o = 16; o > 0; o >>= 1) w += __shfl_xor_sync(0xffffffffu, w, o);
    const unsigned b = __ballot_sync(0xffffffffu, w > 0);
    if (t == 0) {
      out[blockIdx.x] = w;
      ballots[blockIdx.x] = b;
    }
  }
}

// The same neighbour exchange with and without the barrier between the writes and the reads.
void NeighbourKernel(bool barrier, int* out) {
  static int s[kThreads];
  const unsigned t = threadIdx.x;
  s[t] = 0;
  __syncthreads();
  s[t] = static_cast<int>(t) + 1;
  if (barrier) __syncthreads();
  out[t] = s[(t + 1) % blockDim.x];
}

// Thread 0 goes on to __syncthreads while the rest of its warp waits for it at __syncwarp.
void DivergentBarrierKernel(int* out) {
  if (threadIdx.x != 0) __syncwarp();
  __syncthreads();
  out[threadIdx.x] = 1;
}

// Reads shared memory it never wrote (a bug: on a GPU that is garbage): a static __shared__ array, as
// kernels/emu/convert.mjs turns one into (registered with the emulator), and the dynamic shared memory.
void UninitialisedKernel(int* out) {
  static int s[4];
  static const bool reg [[maybe_unused]] = emu::Shared(&s, sizeof(s));
  const int* dyn = reinterpret_cast<const int*>(emu::dyn_smem);
  if (threadIdx.x == 0) {
    out[0] = s[1];
    out[1] = dyn[2];
    s[1] = 7;  // what the next block would read without the emulator's fill
  }
}

// Writes d[n - 1] (thread 0), which is past the end when n is one more than the buffer holds.
void PastEndKernel(int* d, int n) {
  if (threadIdx.x == 0) d[n - 1] = 1;
}

// Lanes 16..31 take part in one shuffle and exit; the rest then ballot (true) and shuffle across 16 lanes
// (o = 16 when `bad`): the ballot must not count the exited lanes, the shuffle reads an exited lane.
void AbsentLaneKernel(bool bad, unsigned* out) {
  const unsigned lane = threadIdx.x & 31;
  const unsigned v = __shfl_xor_sync(0xffffffffu, lane, 1);
  if (lane >= 16) return;
  const unsigned b = __ballot_sync(0x0000ffffu, true);
  const unsigned w = __shfl_xor_sync(0x0000ffffu, v, bad ? 16 : 8);
  if (lane == 0) {
    out[0] = b;
    out[1] = w;
  }
}

// Block b reads what block b - 1 wrote in the same launch (a bug: blocks run in no order on a GPU).
void ChainKernel(int* d) {
  if (threadIdx.x == 0) d[blockIdx.x] = blockIdx.x == 0 ? 1 : d[blockIdx.x - 1] + 1;
}

// 40 KB of static shared memory (registered as convert.mjs registers one); with 16 KB of dynamic shared
// memory a block asks for 56 KB, above the 48 KB a GPU grants without an opt-in.
void BigStaticKernel(int* out) {
  static float s[10240];
  static const bool reg [[maybe_unused]] = emu::Shared(&s, sizeof(s));
  if (threadIdx.x == 0) out[0] = 1;
}

void CountKernel(int* n) { atomicAdd(n, 1); }

void SmemAddressKernel(uintptr_t* out) {
  if (threadIdx.x == 0) *out = reinterpret_cast<uintptr_t>(emu::dyn_smem);
}

// A wmma tile loaded from shared memory at byte offset `off` (a GPU needs it 32-byte aligned).
void WmmaLoadKernel(int off) {
  nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, __nv_bfloat16, nvcuda::wmma::row_major> a;
  nvcuda::wmma::load_matrix_sync(a, reinterpret_cast<const __nv_bfloat16*>(emu::dyn_smem + off), 16);
}

// Runs fn in a child process; returns what it wrote to stderr, its wait status in *status.
std::string InChild(const std::function<void()>& fn, int* status) {
  std::fflush(stdout);
  int pipefd[2];
  if (pipe(pipefd) != 0) return "pipe failed";
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(pipefd[1], 2);
    fn();
    _exit(0);
  }
  close(pipefd[1]);
  std::string err;
  char buf[256];
  for (ssize_t n; (n = read(pipefd[0], buf, sizeof buf)) > 0;) err.append(buf, static_cast<size_t>(n));
  close(pipefd[0]);
  waitpid(pid, status, 0);
  return err;
}

std::vector<float> RunSum(int mode, unsigned live, std::vector<unsigned>* ballots) {
  emu::Order().mode = mode;
  emu::Order().seed = 11;
  std::vector<float> x(1000);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 37) % 101) * 0.25f - 3.0f;
  std::vector<float> out(3, -1);
  ballots->assign(3, 0);
  emu::Launcher(dim3(3), dim3(kThreads)).run(SumKernel, x.data(), static_cast<int>(x.size()), live, out.data(),
                                             ballots->data());
  return out;
}

std::vector<int> RunNeighbour(int mode, bool barrier) {
  emu::Order().mode = mode;
  std::vector<int> out(kThreads, -1);
  emu::Launcher(dim3(1), dim3(kThreads)).run(NeighbourKernel, barrier, out.data());
  return out;
}
}  // namespace

int main() {
  const char* names[] = {"parallel", "forward", "reverse", "random"};
  for (unsigned live : {kThreads, 77u}) {
    std::vector<unsigned> b0;
    const std::vector<float> ref = RunSum(0, live, &b0);
    double want = 0;
    for (int i = 0; i < 1000; ++i) want += static_cast<float>((i * 37) % 101) * 0.25f - 3.0f;
    Check(std::abs(ref[0] - want) < 1e-2 && ref[0] == ref[1] && ref[1] == ref[2],
          "block sum, " + std::to_string(live) + " live threads: " + std::to_string(ref[0]) + " (want " +
              std::to_string(want) + ")");
    for (int mode = 1; mode <= 3; ++mode) {
      std::vector<unsigned> b;
      const std::vector<float> got = RunSum(mode, live, &b);
      Check(got == ref && b == b0, std::string("block sum in ") + names[mode] + " order, " + std::to_string(live) +
                                       " live threads: the same bytes as parallel");
    }
  }
  // With the barrier every order reads the neighbour's write; without it, forward order reads before the
  // neighbour wrote and reverse after: the race shows.
  std::vector<int> want(kThreads);
  for (unsigned t = 0; t < kThreads; ++t) want[t] = static_cast<int>((t + 1) % kThreads) + 1;
  for (int mode = 0; mode <= 3; ++mode)
    Check(RunNeighbour(mode, true) == want, std::string("neighbour exchange with its barrier, ") + names[mode]);
  const std::vector<int> fwd = RunNeighbour(1, false), rev = RunNeighbour(2, false);
  Check(fwd != rev, "neighbour exchange without its barrier: forward and reverse orders differ (the race shows)");
  Check(fwd[0] == 0 && rev[0] == want[0],
        "without the barrier, forward reads the neighbour's old value (" + std::to_string(fwd[0]) +
            "), reverse its new one (" + std::to_string(rev[0]) + ")");
  // Shared memory is garbage at every block start (0xFF bytes), not the previous block's values; the
  // first run of a static's declaration registers it, so only its first block sees zeros.
  emu::Order().mode = 1;
  std::vector<int> un(2, 0);
  emu::Launcher(dim3(1), dim3(32), 64).run(UninitialisedKernel, un.data());
  Check(un[1] == -1, "dynamic shared memory is filled with 0xFF bytes at a block's start (read " + std::to_string(un[1]) + ")");
  emu::Launcher(dim3(1), dim3(32), 64).run(UninitialisedKernel, un.data());
  Check(un[0] == -1 && un[1] == -1, "a registered static __shared__ array is filled too, not left as the last block wrote it (read " +
                                        std::to_string(un[0]) + ")");
  // A warp barrier thread 0 skips: the ordered mode stops with a deadlock report (in a child process).
  int status = 0;
  std::string err = InChild([] {
    emu::Order().mode = 1;
    std::vector<int> out(kThreads, 0);
    emu::Launcher(dim3(1), dim3(kThreads)).run(DivergentBarrierKernel, out.data());
  }, &status);
  Check(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT && err.find("deadlock") != std::string::npos,
        "a warp barrier one thread skips is reported as a deadlock: \"" + err.substr(0, err.find('\n')) + "\"");
  // Device buffers end at a guard page: a kernel writing past the end of one stops with a report (a GPU
  // would corrupt the next buffer); writing its last element is fine. (Buffers are 256-byte aligned, as
  // CUDA's, so up to 255 bytes past the end of a size that is not a multiple of 256 go unnoticed.)
  for (int over : {0, 1}) {
    err = InChild([over] {
      emu::Order().mode = 1;
      int* d = nullptr;
      if (cudaMalloc(reinterpret_cast<void**>(&d), sizeof(int) * 1024) != cudaSuccess) _exit(3);
      emu::Launcher(dim3(1), dim3(32)).run(PastEndKernel, d, 1024 + over);
      cudaFree(d);
    }, &status);
    if (over)
      Check(WIFEXITED(status) && WEXITSTATUS(status) == 86 && err.find("out of bounds") != std::string::npos &&
                err.find("0 bytes past the end of a device allocation of 4096 bytes") != std::string::npos,
            "a kernel writing one int past a 4096-byte device buffer is stopped: \"" + err.substr(err.empty() ? 0 : 1, err.find('\n', 1) - 1) + "\"");
    else
      Check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a kernel writing up to the last int of the buffer runs (" + err + ")");
  }
  // Warp collectives after some lanes exited: a ballot counts only the lanes still there, and a shuffle
  // reading an exited lane (undefined on a GPU) stops the run.
  {
    emu::Order().mode = 1;
    unsigned got[2] = {0, 0};
    emu::Launcher(dim3(1), dim3(32)).run(AbsentLaneKernel, false, got);
    Check(got[0] == 0xffffu && got[1] == 9, "after lanes 16-31 exit, a ballot sees lanes 0-15 only (" + std::to_string(got[0]) +
                                                ") and a shuffle among them reads lane 8's value (" + std::to_string(got[1]) + ")");
    err = InChild([] {
      emu::Order().mode = 1;
      unsigned out[2];
      emu::Launcher(dim3(1), dim3(32)).run(AbsentLaneKernel, true, out);
    }, &status);
    Check(WIFSIGNALED(status) && err.find("reads lane 16, which did not take part") != std::string::npos,
          "a shuffle reading an exited lane stops: \"" + err.substr(0, err.find('\n')) + "\"");
  }
  // The blocks of a launch run last to first in reverse order (and shuffled in random order): a block
  // reading another block's write of the same launch gets other bytes in forward and reverse order.
  {
    std::vector<std::vector<int>> chains;
    for (int mode = 1; mode <= 3; ++mode) {
      emu::Order().mode = mode;
      std::vector<int> d(8, 0);
      emu::Launcher(dim3(8), dim3(32)).run(ChainKernel, d.data());
      chains.push_back(d);
    }
    Check(chains[0] == std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8} && chains[1] == std::vector<int>{1, 1, 1, 1, 1, 1, 1, 1} &&
              chains[2] != chains[0],
          "a block reading another block's write: forward, reverse and random block orders differ");
  }
  // Static and dynamic shared memory count together against the block's limit.
  {
    emu::Order().mode = 1;
    int o = 0;
    emu::Launcher(dim3(1), dim3(32), 8 * 1024).run(BigStaticKernel, &o);
    Check(cudaGetLastError() == 0, "40 KB static + 8 KB dynamic shared memory: within 48 KB");
    emu::Launcher(dim3(1), dim3(32), 16 * 1024).run(BigStaticKernel, &o);
    Check(cudaGetLastError() == 1, "40 KB static + 16 KB dynamic shared memory without an opt-in fails as on a GPU");
  }
  // Launch configurations no GPU accepts are refused (cudaErrorInvalidConfiguration), the kernel not run.
  {
    emu::Order().mode = 1;
    int n = 0;
    emu::Launcher(dim3(2), dim3(64)).run(CountKernel, &n);
    Check(n == 128 && cudaGetLastError() == 0, "a 2 x 64 launch runs 128 threads");
    struct Bad { dim3 g, b; const char* what; };
    for (const Bad& c : {Bad{dim3(1), dim3(1025), "1025 threads a block"}, Bad{dim3(1), dim3(32, 33), "32 x 33 threads a block"},
                         Bad{dim3(0), dim3(32), "an empty grid"}, Bad{dim3(1, 65536), dim3(32), "grid.y 65536"}}) {
      n = 0;
      emu::Launcher(c.g, c.b).run(CountKernel, &n);
      Check(n == 0 && cudaGetLastError() == 9, std::string("a launch with ") + c.what + " is refused as an invalid configuration");
    }
    uintptr_t addr = 1;
    emu::Launcher(dim3(1), dim3(32), 100).run(SmemAddressKernel, &addr);
    Check(addr % 128 == 0, "dynamic shared memory starts 128-byte aligned");
  }
  // wmma's alignment rule: a load from a 32-byte aligned pointer runs, one 16 bytes further stops the run.
  for (int off : {32, 16}) {
    err = InChild([off] {
      emu::Order().mode = 1;
      emu::Launcher(dim3(1), dim3(32), 1024).run(WmmaLoadKernel, off);
    }, &status);
    if (off == 32)
      Check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a wmma load from a 32-byte aligned pointer runs (" + err + ")");
    else
      Check(WIFSIGNALED(status) && err.find("not 32-byte aligned") != std::string::npos,
            "a wmma load 16 bytes off a 32-byte boundary stops: \"" + err.substr(0, err.find('\n')) + "\"");
  }
  // The emulated cuBLAS, reached through the loader as kernels/gemm.cu reaches it.
  {
    Check(emu::Dlopen("libcublas.so.13", RTLD_NOW) == nullptr &&
              std::string(emu::Dlerror()).find("only libcublas.so.12") != std::string::npos,
          "the emulator answers libcublas.so.13 with a loader error");
    void* lib = emu::Dlopen("libcublas.so.12", RTLD_NOW);
    using Gemm = int (*)(void*, int, int, int, int, int, const void*, const void*, int, int, const void*, int, int,
                         const void*, void*, int, int, int, int);
    using Create = int (*)(void**);
    auto create = reinterpret_cast<Create>(emu::Dlsym(lib, "cublasCreate_v2"));
    auto gemm = reinterpret_cast<Gemm>(emu::Dlsym(lib, "cublasGemmEx"));
    Check(lib && create && gemm && emu::Dlsym(lib, "cublasLtCreate") == nullptr, "libcublas.so.12 loads with its entry points");
    void* h = nullptr;
    create(&h);
    // Column-major A (3 x 2 with lda 4: a padding row), B (2 x 2), C = A B (3 x 2, ldc 3).
    const float a[8] = {1, 2, 3, -7, 4, 5, 6, -7}, b[4] = {1, 0.5f, -1, 2};
    float *dA = nullptr, *dB = nullptr, *dC = nullptr;
    cudaMalloc(reinterpret_cast<void**>(&dA), sizeof a);
    cudaMalloc(reinterpret_cast<void**>(&dB), sizeof b);
    cudaMalloc(reinterpret_cast<void**>(&dC), 6 * sizeof(float));
    cudaMemcpy(dA, a, sizeof a, cudaMemcpyHostToDevice);
    cudaMemcpy(dB, b, sizeof b, cudaMemcpyHostToDevice);
    const float nan = std::nanf(""), cnan[6] = {nan, nan, nan, nan, nan, nan};
    cudaMemcpy(dC, cnan, sizeof cnan, cudaMemcpyHostToDevice);
    const float one = 1, zero = 0;
    int st = gemm(h, 0, 0, 3, 2, 2, &one, dA, 0, 4, dB, 0, 2, &zero, dC, 0, 3, 68, -1);
    float c[6];
    cudaMemcpy(c, dC, sizeof c, cudaMemcpyDeviceToHost);
    // C(:,0) = A(:,0) + 0.5 A(:,1) = (3, 4.5, 6); C(:,1) = -A(:,0) + 2 A(:,1) = (7, 8, 9)
    const float want_c[6] = {3, 4.5f, 6, 7, 8, 9};
    Check(st == 0 && std::equal(c, c + 6, want_c),
          "cublasGemmEx N,N: the column-major product with lda > m; C's NaNs not read at beta 0");
    // op(A) = A^T with A stored 2 x 3 (lda 2): the same 3 x 2 matrix as above.
    const float at[6] = {1, 4, 2, 5, 3, 6};
    cudaMemcpy(dA, at, sizeof at, cudaMemcpyHostToDevice);
    st = gemm(h, 1, 0, 3, 2, 2, &one, dA, 0, 2, dB, 0, 2, &zero, dC, 0, 3, 68, -1);
    cudaMemcpy(c, dC, sizeof c, cudaMemcpyDeviceToHost);
    Check(st == 0 && std::equal(c, c + 6, want_c), "cublasGemmEx T,N: op(A) = A^T");
    Check(gemm(h, 0, 0, 3, 2, 2, &one, dA, 0, 2, dB, 0, 2, &zero, dC, 0, 3, 68, -1) == 7,
          "lda below m with OP_N is CUBLAS_STATUS_INVALID_VALUE");
    Check(gemm(h, 0, 0, 3, 2, 2, &one, dA, 0, 4, dB, 14, 2, &zero, dC, 0, 3, 68, -1) == 15,
          "fp32 A with bf16 B is CUBLAS_STATUS_NOT_SUPPORTED");
    float host_c[6];
    Check(gemm(h, 0, 0, 3, 2, 2, &one, dA, 0, 4, dB, 0, 2, &zero, host_c, 0, 3, 68, -1) == 13,
          "a host pointer for C fails (CUBLAS_STATUS_EXECUTION_FAILED)");
    Check(gemm(h, 0, 0, 3, 2, 2, &one, dA, 0, 4, dB, 0, 3, &zero, dC, 0, 3, 68, -1) == 13,
          "a B whose extent (ldb 3: 5 floats) passes the end of its 4-float allocation fails");
    cudaFree(dA);
    cudaFree(dB);
    cudaFree(dC);
  }
  std::printf("%d failed\n", failures);
  return failures ? 1 : 0;
}
