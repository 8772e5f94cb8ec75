// Host-emulation stand-ins (kernels/emu/run.sh only; never built into the engine).
#pragma once
// Compile-only stand-in for nvcuda::wmma (the tensor-core path is not emulated).
namespace nvcuda::wmma {
struct row_major {}; struct col_major {}; struct matrix_a {}; struct matrix_b {}; struct accumulator {};
enum layout_t { mem_row_major };
template <class U, int M, int N, int K, class T, class L = void> struct fragment {};
template <class F, class V> void fill_fragment(F&, V) {}
template <class F, class P> void load_matrix_sync(F&, const P*, unsigned) {}
template <class F, class P> void store_matrix_sync(P*, const F&, unsigned, layout_t) {}
template <class A, class B, class C> void mma_sync(C&, const A&, const B&, const C&) {}
}
