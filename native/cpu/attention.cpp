// Attention, blocked for reuse: a work item is (KV head g, a run of its query heads, a block of query
// rows). For each key slot the item computes all its rows' scores, then a per-row fp32 softmax
// (max-subtracted, normalised like torch), then accumulates values slot by slot. Every output row is
// produced by one thread in a fixed order, so results do not depend on the thread count.
#include "cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "cpu/simd.h"

namespace starkv::cpu {
namespace {

inline float Dot(const float* a, const float* b, int n) {
#if defined(__AVX512F__)
  __m512 acc = _mm512_setzero_ps();
  int k = 0;
  for (; k + 16 <= n; k += 16) acc = _mm512_fmadd_ps(Load16(a + k), Load16(b + k), acc);
  if (k < n) {
    const __mmask16 m = TailMask(n - k);
    acc = _mm512_fmadd_ps(Load16Masked(a + k, m), Load16Masked(b + k, m), acc);
  }
  return Hsum(acc);
#else
  return DotScalar16(a, [&](int64_t k) { return b[k]; }, n);
#endif
}

inline void Axpy(float* y, const float* x, float a, int n) {
  int k = 0;
#if defined(__AVX512F__)
  const __m512 av = _mm512_set1_ps(a);
  for (; k + 16 <= n; k += 16) _mm512_storeu_ps(y + k, _mm512_fmadd_ps(av, Load16(x + k), Load16(y + k)));
#endif
  for (; k < n; ++k) y[k] += a * x[k];
}

struct Item {
  int g, h0, h1;       // KV head, query heads [h0, h1)
  int64_t i0, i1;      // query rows [i0, i1)
  int64_t lo, hi_max;  // key slots scanned [lo, hi_max)
};

}  // namespace

void Attention(ThreadPool& pool, MemoryAccount* account, const AttnArgs& a) {
  if (a.heads <= 0 || a.kv_heads <= 0 || a.heads % a.kv_heads != 0 || a.hd <= 0)
    throw Error("attention: bad head counts");
  if (a.n_q <= 0) return;
  const int group = a.heads / a.kv_heads;
  const int64_t QB = 16;
  // Work items.
  std::vector<Item> items;
  const int64_t nqb_est = (a.n_q + QB - 1) / QB;
  const int64_t want = 2LL * pool.size();
  int hc = group;  // query heads per item: split the group when there are too few items
  while (hc > 1 && a.kv_heads * nqb_est * ((group + hc - 1) / hc) < want) hc = (hc + 1) / 2;
  auto add_rows = [&](int64_t s0, int64_t s1, bool seg) {
    for (int64_t i0 = s0; i0 < s1; i0 += QB) {
      const int64_t i1 = std::min(s1, i0 + QB);
      const int64_t lo = seg ? s0 : 0;
      const int64_t hi = seg ? s1 : a.n_kv - a.n_q + i1;
      for (int g = 0; g < a.kv_heads; ++g)
        for (int h0 = g * group; h0 < (g + 1) * group; h0 += hc)
          items.push_back(Item{g, h0, std::min((g + 1) * group, h0 + hc), i0, i1, lo, hi});
    }
  };
  if (a.segments) {
    if (a.n_q != a.n_kv) throw Error("attention: segments need as many queries as keys");
    for (int s = 0; s < a.n_segments; ++s) {
      const int64_t s0 = a.segments[s], s1 = a.segments[s + 1];
      if (s0 < 0 || s1 < s0 || s1 > a.n_q) throw Error("attention: bad segment boundaries");
      add_rows(s0, s1, true);
    }
  } else {
    if (a.n_kv < a.n_q) throw Error("attention: fewer key slots than queries");
    add_rows(0, a.n_q, false);
  }
  int64_t max_span = 0;
  for (const Item& it : items) max_span = std::max(max_span, it.hi_max - it.lo);
  const int64_t rows_max = static_cast<int64_t>(hc) * QB;
  const int nt = pool.size();
  const int64_t per_thread = rows_max * max_span + rows_max * a.hd;
  Buffer scratch(account, MemCategory::Workspace, sizeof(float) * static_cast<size_t>(per_thread * nt));
  const int hd = a.hd;
  pool.Run(nt, [&](int t, int ntt) {
    const int64_t n_items = static_cast<int64_t>(items.size());
    const int64_t b = n_items * t / ntt, e = n_items * (t + 1) / ntt;
    float* S = scratch.f() + per_thread * t;
    float* acc = S + rows_max * max_span;
    for (int64_t w = b; w < e; ++w) {
      const Item& it = items[w];
      const int64_t span = it.hi_max - it.lo;
      const int nh = it.h1 - it.h0;
      const int64_t nrow = nh * (it.i1 - it.i0);
      const float* kbase = a.k + it.g * a.k_head;
      const float* vbase = a.v + it.g * a.v_head;
      // Row r = (head h0 + r / nqi, query i0 + r % nqi); its visible slots end at hi(r).
      const int64_t nqi = it.i1 - it.i0;
      auto row_hi = [&](int64_t r) {
        return a.segments ? it.hi_max : a.n_kv - a.n_q + it.i0 + (r % nqi) + 1;
      };
      for (int64_t s = 0; s < span; ++s) {
        const float* kr = kbase + (it.lo + s) * a.k_row;
        for (int64_t r = 0; r < nrow; ++r) {
          const int h = it.h0 + static_cast<int>(r / nqi);
          const int64_t i = it.i0 + r % nqi;
          S[r * span + s] = it.lo + s < row_hi(r) ? Dot(a.q + i * a.q_row + static_cast<int64_t>(h) * hd, kr, hd) * a.scale
                                                  : -INFINITY;
        }
      }
      for (int64_t r = 0; r < nrow; ++r) {
        float* sr = S + r * span;
        float m = -INFINITY;
        for (int64_t s = 0; s < span; ++s) m = std::max(m, sr[s]);
        float sum = 0.0f;
        for (int64_t s = 0; s < span; ++s) {
          sr[s] = std::exp(sr[s] - m);
          sum += sr[s];
        }
        const float inv = 1.0f / sum;
        for (int64_t s = 0; s < span; ++s) sr[s] *= inv;
      }
      std::fill(acc, acc + nrow * hd, 0.0f);
      for (int64_t s = 0; s < span; ++s) {
        const float* vr = vbase + (it.lo + s) * a.v_row;
        for (int64_t r = 0; r < nrow; ++r) {
          const float p = S[r * span + s];
          if (p != 0.0f) Axpy(acc + r * hd, vr, p, hd);
        }
      }
      for (int64_t r = 0; r < nrow; ++r) {
        const int h = it.h0 + static_cast<int>(r / nqi);
        const int64_t i = it.i0 + r % nqi;
        std::copy(acc + r * hd, acc + (r + 1) * hd, a.out + i * a.out_row + static_cast<int64_t>(h) * hd);
      }
    }
  });
}

}  // namespace starkv::cpu
