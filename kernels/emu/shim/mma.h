// Host-emulation stand-ins (kernels/emu/run.sh only; never built into the engine).
// nvcuda::wmma emulated per thread: every thread of the warp holds and computes the whole 16x16 tile
// (the same values), so a warp-collective load/mma/store gives the warp's result.
#pragma once
#include "core/dtype.h"
#include "cuda_bf16.h"
#include "cuda_fp16.h"
namespace nvcuda::wmma {
struct row_major {}; struct col_major {}; struct matrix_a {}; struct matrix_b {}; struct accumulator {};
enum layout_t { mem_row_major };
template <class U, int M, int N, int K, class T, class L = void> struct fragment { float v[256]; };
inline float ToF(__nv_bfloat16 h) { return starkv::Bf16ToF32(h.x); }
inline float ToF(__half h) { return starkv::F16ToF32(h.x); }
template <class F> void fill_fragment(F& f, float x) { for (float& e : f.v) e = x; }
template <int M, int N, int K, class T>
void load_matrix_sync(fragment<matrix_a, M, N, K, T, row_major>& f, const T* p, unsigned ldm) {
  for (int r = 0; r < 16; ++r) for (int c = 0; c < 16; ++c) f.v[r * 16 + c] = ToF(p[r * ldm + c]);
}
template <int M, int N, int K, class T>
void load_matrix_sync(fragment<matrix_b, M, N, K, T, col_major>& f, const T* p, unsigned ldm) {
  for (int k = 0; k < 16; ++k) for (int n = 0; n < 16; ++n) f.v[k * 16 + n] = ToF(p[n * ldm + k]);
}
template <int M, int N, int K, class T>
void load_matrix_sync(fragment<matrix_b, M, N, K, T, row_major>& f, const T* p, unsigned ldm) {
  for (int k = 0; k < 16; ++k) for (int n = 0; n < 16; ++n) f.v[k * 16 + n] = ToF(p[k * ldm + n]);
}
template <int M, int N, int K>
void load_matrix_sync(fragment<accumulator, M, N, K, float>& f, const float* p, unsigned ldm, layout_t) {
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
  for (int r = 0; r < 16; ++r) for (int c = 0; c < 16; ++c) p[r * ldm + c] = f.v[r * 16 + c];
}
}  // namespace nvcuda::wmma
