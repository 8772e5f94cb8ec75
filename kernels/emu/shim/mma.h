// Host-emulation stand-ins (kernels/emu/run.sh only; never built into the engine).
// nvcuda::wmma emulated per thread: every thread of the warp holds and computes the whole 16x16 tile
// (the same values), so a warp-collective load/mma/store gives the warp's result. Loads and stores check
// what the CUDA programming guide requires of them (the emulator would work without it, a GPU not): the
// pointer 256-bit (32-byte) aligned, ldm a multiple of 8 elements for 16-bit types and of 4 for float
// (16 bytes); a violation stops the run naming the call.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include "core/dtype.h"
#include "cuda_bf16.h"
#include "cuda_fp16.h"
namespace nvcuda::wmma {
struct row_major {}; struct col_major {}; struct matrix_a {}; struct matrix_b {}; struct accumulator {};
enum layout_t { mem_row_major };
template <class U, int M, int N, int K, class T, class L = void> struct fragment { float v[256]; };
template <class T> inline void Check(const char* call, const T* p, unsigned ldm) {
  if (reinterpret_cast<uintptr_t>(p) % 32 == 0 && ldm * sizeof(T) % 16 == 0) return;
  std::fprintf(stderr, "emu wmma: %s with pointer %p (%s) and ldm %u (%s): a GPU requires a 32-byte aligned "
               "pointer and ldm a multiple of 16 bytes\n", call, static_cast<const void*>(p),
               reinterpret_cast<uintptr_t>(p) % 32 ? "not 32-byte aligned" : "aligned", ldm,
               ldm * sizeof(T) % 16 ? "not a multiple of 16 bytes" : "ok");
  std::abort();
}
inline float ToF(__nv_bfloat16 h) { return starkv::Bf16ToF32(h.x); }
inline float ToF(__half h) { return starkv::F16ToF32(h.x); }
template <class F> void fill_fragment(F& f, float x) { for (float& e : f.v) e = x; }
template <int M, int N, int K, class T>
void load_matrix_sync(fragment<matrix_a, M, N, K, T, row_major>& f, const T* p, unsigned ldm) {
  Check("load_matrix_sync(matrix_a)", p, ldm);
  for (int r = 0; r < 16; ++r) for (int c = 0; c < 16; ++c) f.v[r * 16 + c] = ToF(p[r * ldm + c]);
}
template <int M, int N, int K, class T>
void load_matrix_sync(fragment<matrix_b, M, N, K, T, col_major>& f, const T* p, unsigned ldm) {
  Check("load_matrix_sync(matrix_b, col_major)", p, ldm);
  for (int k = 0; k < 16; ++k) for (int n = 0; n < 16; ++n) f.v[k * 16 + n] = ToF(p[n * ldm + k]);
}
template <int M, int N, int K, class T>
void load_matrix_sync(fragment<matrix_b, M, N, K, T, row_major>& f, const T* p, unsigned ldm) {
  Check("load_matrix_sync(matrix_b, row_major)", p, ldm);
  for (int k = 0; k < 16; ++k) for (int n = 0; n < 16; ++n) f.v[k * 16 + n] = ToF(p[k * ldm + n]);
}
template <int M, int N, int K>
void load_matrix_sync(fragment<accumulator, M, N, K, float>& f, const float* p, unsigned ldm, layout_t) {
  Check("load_matrix_sync(accumulator)", p, ldm);
  for (int r = 0; r < 16; ++r) for (int c = 0; c < 16; ++c) f.v[r * 16 + c] = p[r * ldm + c];
}
template <class A, class B, class C> void mma_sync(C& d, const A& a, const B& b, const C& c) {
  float t[256];
  for (int r = 0; r < 16; ++r) for (int n = 0; n < 16; ++n) {
    float s = c.v[r * 16 + n];
    for (int k = 0; k < 16; ++k) s += a.v[r * 16 + k] * b.v[k * 16 + n];
    t[r * 16 + n] = s;
  }
  for (int i = 0; i < 256; ++i) d.v[i] = t[i];
}
template <class F> void store_matrix_sync(float* p, const F& f, unsigned ldm, layout_t) {
  Check("store_matrix_sync", p, ldm);
  for (int r = 0; r < 16; ++r) for (int c = 0; c < 16; ++c) p[r * ldm + c] = f.v[r * 16 + c];
}
}  // namespace nvcuda::wmma
