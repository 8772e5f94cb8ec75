// Host-emulation stand-in for cuBLAS (kernels/emu/run.sh only; never built into the engine).
// kernels/gemm.cu loads cuBLAS at run time (dlopen + dlsym of four entry points). convert.mjs turns its
// dl* calls into emu::Dl*, which answer "libcublas.so.12" with the functions below (unless
// STARKV_EMU_CUBLAS=0) and pass every other name to the real loader. The functions follow cuBLAS's
// documented contract, not our caller's expectations, so that a wrong transpose, leading dimension, type
// code or a host pointer in the call fails here instead of on the first GPU:
//   cublasGemmEx: column-major C(m x n) = alpha op(A)(m x k) op(B)(k x n) + beta C, op = N, T or C; A holds
//   lda x (transa == N ? k : m) elements, lda >= max(1, transa == N ? m : k), likewise B (ldb >= max(1,
//   transb == N ? k : n)) and ldc >= max(1, m), else CUBLAS_STATUS_INVALID_VALUE; the real-typed
//   combinations COMPUTE_32F accepts (A = B = 16F or 16BF with C of their type or 32F, all 32F),
//   else CUBLAS_STATUS_NOT_SUPPORTED; alpha and beta are host floats (the default pointer mode); with
//   beta = 0, C is not read (BLAS: it may hold NaNs). A, B and C must lie inside one emulated device
//   allocation each, with the extent the dimensions imply, else CUBLAS_STATUS_EXECUTION_FAILED (a GPU
//   would fault or read a neighbour) and a message naming the operand.
// The product is computed in fp32 from the inputs' values (bf16/f16 widened exactly), k summed in order:
// not cuBLAS's summation order or its algorithms, which the op table's thresholds leave room for.
#pragma once
#include <dlfcn.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>
#include "core/dtype.h"
#include "cuda_runtime.h"

namespace emu::cublas {
enum Status { kSuccess = 0, kNotInitialized = 1, kInvalidValue = 7, kExecutionFailed = 13, kNotSupported = 15 };
enum Type { kR32F = 0, kR16F = 2, kR16BF = 14 };
constexpr int kCompute32F = 68;
struct Handle { cudaStream_t stream = nullptr; int magic = 0x5eed; };

inline int ElemBytes(int t) { return t == kR32F ? 4 : 2; }
inline float Load(const void* p, int t, size_t i) {
  if (t == kR32F) return static_cast<const float*>(p)[i];
  const uint16_t h = static_cast<const uint16_t*>(p)[i];
  return t == kR16BF ? starkv::Bf16ToF32(h) : starkv::F16ToF32(h);
}
inline void Store(void* p, int t, size_t i, float v) {
  if (t == kR32F) static_cast<float*>(p)[i] = v;
  else if (t == kR16BF) static_cast<uint16_t*>(p)[i] = starkv::F32ToBf16(v);
  else std::abort();  // 16F output: not used by the engine; refused as not supported before this
}
// Whether [p, p + bytes) lies inside one emulated device allocation; says which operand when not.
inline bool InDevice(const char* what, const void* p, size_t bytes) {
  auto& g = Guard();
  std::lock_guard<std::recursive_mutex> lk(g.mu);
  const char* a = static_cast<const char*>(p);
  for (auto& [q, u] : g.users) {
    const char* b = static_cast<const char*>(q);
    if (a >= b && a < b + std::max<size_t>(u.bytes, 1)) {
      if (a + bytes <= b + u.bytes) return true;
      std::fprintf(stderr, "emu cublas: %s at %p spans %zu bytes, %zu past the end of its device allocation of %zu bytes\n",
                   what, p, bytes, static_cast<size_t>(a + bytes - (b + u.bytes)), u.bytes);
      return false;
    }
  }
  std::fprintf(stderr, "emu cublas: %s at %p is not in device memory (host pointer or freed buffer)\n", what, p);
  return false;
}

inline int Create(void** h) {
  if (!h) return kInvalidValue;
  *h = new Handle;
  return kSuccess;
}
inline int Destroy(void* h) {
  if (!h || static_cast<Handle*>(h)->magic != 0x5eed) return kNotInitialized;
  delete static_cast<Handle*>(h);
  return kSuccess;
}
inline int SetStream(void* h, cudaStream_t s) {
  if (!h || static_cast<Handle*>(h)->magic != 0x5eed) return kNotInitialized;
  static_cast<Handle*>(h)->stream = s;
  return kSuccess;
}
inline int GemmEx(void* h, int transa, int transb, int m, int n, int k, const void* alpha, const void* A, int at,
                  int lda, const void* B, int bt, int ldb, const void* beta, void* C, int ct, int ldc, int compute,
                  int algo) {
  if (!h || static_cast<Handle*>(h)->magic != 0x5eed) return kNotInitialized;
  auto bad = [](const char* why) {
    std::fprintf(stderr, "emu cublas: cublasGemmEx: %s\n", why);
    return kInvalidValue;
  };
  if (transa < 0 || transa > 2 || transb < 0 || transb > 2) return bad("transa/transb is not N, T or C");
  if (m < 0 || n < 0 || k < 0) return bad("negative m, n or k");
  const int arows = transa == 0 ? m : k, acols = transa == 0 ? k : m;
  const int brows = transb == 0 ? k : n, bcols = transb == 0 ? n : k;
  if (lda < std::max(1, arows)) return bad("lda < max(1, rows of A as stored)");
  if (ldb < std::max(1, brows)) return bad("ldb < max(1, rows of B as stored)");
  if (ldc < std::max(1, m)) return bad("ldc < max(1, m)");
  if (!alpha || !beta) return bad("alpha or beta is null");
  if (algo != -1 && !(algo >= 0 && algo <= 23) && !(algo >= 99 && algo <= 115)) return bad("unknown algo");
  const bool types_ok = compute == kCompute32F &&
                        ((at == kR32F && bt == kR32F && ct == kR32F) ||
                         ((at == kR16BF || at == kR16F) && bt == at && (ct == at || ct == kR32F)));
  if (!types_ok || ct == kR16F) {
    std::fprintf(stderr, "emu cublas: cublasGemmEx: types A %d, B %d, C %d with compute %d not supported\n", at, bt,
                 ct, compute);
    return kNotSupported;
  }
  if (m == 0 || n == 0) return kSuccess;
  // Host scalars (CUBLAS_POINTER_MODE_HOST, the default): they must not be device memory.
  {
    auto& g = Guard();
    std::lock_guard<std::recursive_mutex> lk(g.mu);
    for (const void* s : {alpha, beta})
      for (auto& [q, u] : g.users)
        if (s >= q && static_cast<const char*>(s) < static_cast<const char*>(q) + u.bytes) {
          std::fprintf(stderr, "emu cublas: alpha/beta point into device memory (pointer mode is host)\n");
          return kExecutionFailed;
        }
  }
  const float al = *static_cast<const float*>(alpha), be = *static_cast<const float*>(beta);
  auto extent = [](int ld, int rows, int cols, int t) {
    return cols == 0 || rows == 0 ? size_t(0) : (static_cast<size_t>(ld) * (cols - 1) + rows) * ElemBytes(t);
  };
  std::lock_guard<std::recursive_mutex> one(StreamMutex());  // in stream order with the launches and copies
  if ((k > 0 && (!InDevice("A", A, extent(lda, arows, acols, at)) || !InDevice("B", B, extent(ldb, brows, bcols, bt)))) ||
      !InDevice("C", C, extent(ldc, m, n, ct)))
    return kExecutionFailed;
  DeviceAccess access;
  std::vector<float> col(k);
  for (int j = 0; j < n; ++j) {
    for (int l = 0; l < k; ++l)  // op(B)(l, j)
      col[l] = Load(B, bt, transb == 0 ? static_cast<size_t>(j) * ldb + l : static_cast<size_t>(l) * ldb + j);
    for (int i = 0; i < m; ++i) {
      float s = 0.0f;
      for (int l = 0; l < k; ++l)  // op(A)(i, l)
        s += Load(A, at, transa == 0 ? static_cast<size_t>(l) * lda + i : static_cast<size_t>(i) * lda + l) * col[l];
      const size_t ci = static_cast<size_t>(j) * ldc + i;
      Store(C, ct, ci, be == 0.0f ? al * s : al * s + be * Load(C, ct, ci));
    }
  }
  return kSuccess;
}

inline bool Enabled() {
  const char* v = std::getenv("STARKV_EMU_CUBLAS");
  return !(v && std::strcmp(v, "0") == 0);
}
inline int g_lib_tag;  // the handle DlOpen returns for the emulated library
}  // namespace emu::cublas

namespace emu {
inline const char*& DlLastError() { static thread_local const char* e = nullptr; return e; }
inline void* Dlopen(const char* name, int flags) {
  if (name && std::strcmp(name, "libcublas.so.12") == 0 && cublas::Enabled()) return &cublas::g_lib_tag;
  if (name && std::strncmp(name, "libcublas.so", 12) == 0) {  // never a real cuBLAS in the emulator
    static thread_local std::string msg;
    msg = std::string(name) + ": cannot open shared object file (emulator: only libcublas.so.12 is emulated" +
          (cublas::Enabled() ? ")" : ", and STARKV_EMU_CUBLAS=0 turned it off)");
    DlLastError() = msg.c_str();
    return nullptr;
  }
  void* h = dlopen(name, flags);
  if (!h) DlLastError() = dlerror();
  return h;
}
inline void* Dlsym(void* lib, const char* sym) {
  if (lib != &cublas::g_lib_tag) return dlsym(lib, sym);
  if (std::strcmp(sym, "cublasCreate_v2") == 0) return reinterpret_cast<void*>(&cublas::Create);
  if (std::strcmp(sym, "cublasDestroy_v2") == 0) return reinterpret_cast<void*>(&cublas::Destroy);
  if (std::strcmp(sym, "cublasSetStream_v2") == 0) return reinterpret_cast<void*>(&cublas::SetStream);
  if (std::strcmp(sym, "cublasGemmEx") == 0) return reinterpret_cast<void*>(&cublas::GemmEx);
  return nullptr;
}
inline int Dlclose(void* lib) { return lib == &cublas::g_lib_tag ? 0 : dlclose(lib); }
inline const char* Dlerror() {
  const char* e = DlLastError();
  DlLastError() = nullptr;
  return e;
}
}  // namespace emu
