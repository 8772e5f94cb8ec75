// Attention as blocked GEMMs. A work item is a set of query rows that share one KV head and one key
// range: (query head, block of up to 128 query rows) for prefill and vision, or (KV head, one query
// row with all the query heads of its group) for decode. Per item, over chunks of kAttnKeyChunk key
// slots: S = Q K_c^T (single-threaded GEMM), an online fp32 softmax of S * scale with the causal mask
// (running max and sum per row), O += P V_c with O rescaled when a row's max grows; at the end O / sum.
// Each output row is produced by one thread in a fixed order, so results do not depend on the thread
// count.
#include "cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "cpu/gemm.h"
#include "cpu/simd.h"

namespace starkv::cpu {
namespace {

struct Item {
  const float* q;    // first query row of the item
  int64_t q_ld;      // stride between the item's query rows
  float* out;
  int64_t out_ld;
  int g;             // KV head
  int64_t rows;      // query rows in the item
  int64_t lo, hi;    // key slots [lo, hi) scanned
  int64_t causal_hi0;  // row r sees slots < causal_hi0 + r * causal_step (clamped to hi)
  int64_t causal_step;
};

// x[0, valid) *= scale in place; returns their maximum (-inf for none).
float ScaleMax(float* x, int64_t valid, float scale) {
  float m = -INFINITY;
  int64_t i = 0;
#if defined(__AVX512F__)
  const __m512 sc = _mm512_set1_ps(scale);
  __m512 mv = _mm512_set1_ps(-INFINITY);
  for (; i + 16 <= valid; i += 16) {
    const __m512 v = _mm512_mul_ps(_mm512_loadu_ps(x + i), sc);
    _mm512_storeu_ps(x + i, v);
    mv = _mm512_max_ps(mv, v);
  }
  m = _mm512_reduce_max_ps(mv);
#elif defined(STARKV_AVX2)
  const __m256 sc = _mm256_set1_ps(scale);
  __m256 mv = _mm256_set1_ps(-INFINITY);
  for (; i + 8 <= valid; i += 8) {
    const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), sc);
    _mm256_storeu_ps(x + i, v);
    mv = _mm256_max_ps(mv, v);
  }
  m = Hmax8(mv);
#endif
  for (; i < valid; ++i) {
    x[i] *= scale;
    m = std::max(m, x[i]);
  }
  return m;
}

// x[i] = exp(x[i] - m) for i < valid in place; returns their sum.
float ExpSum(float* x, int64_t valid, float m) {
  float sum = 0.0f;
  int64_t i = 0;
#if defined(__AVX512F__)
  const __m512 mm = _mm512_set1_ps(m);
  __m512 sv = _mm512_setzero_ps();
  for (; i + 16 <= valid; i += 16) {
    const __m512 e = Exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), mm));
    _mm512_storeu_ps(x + i, e);
    sv = _mm512_add_ps(sv, e);
  }
  sum = Hsum(sv);
  if (i < valid) {
    const __mmask16 k = TailMask(valid - i);
    const __m512 e = _mm512_maskz_mov_ps(k, Exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), mm)));
    _mm512_mask_storeu_ps(x + i, k, e);
    sum += Hsum(e);
    i = valid;
  }
#elif defined(STARKV_AVX2)
  const __m256 mm = _mm256_set1_ps(m);
  __m256 sv = _mm256_setzero_ps();
  for (; i + 8 <= valid; i += 8) {
    const __m256 e = Exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), mm));
    _mm256_storeu_ps(x + i, e);
    sv = _mm256_add_ps(sv, e);
  }
  sum = Hsum8(sv);
#endif
  for (; i < valid; ++i) {
    x[i] = std::exp(x[i] - m);
    sum += x[i];
  }
  return sum;
}

// One chunk of a row's online softmax: x [n] raw scores of which the first `valid` are unmasked.
// In place: x = exp(x * scale - m') (zeros after valid), with m' the running maximum m updated by this
// chunk; the running sum l becomes l * alpha + sum(x). Returns alpha = exp(m - m'), the factor by which
// the row's output accumulated over earlier chunks must be multiplied (1 when the chunk has no key).
float SoftmaxChunk(float* x, int64_t n, int64_t valid, float scale, float& m, float& l) {
  float alpha = 1.0f;
  if (valid > 0) {
    const float mc = ScaleMax(x, valid, scale);
    if (mc > m) {
      alpha = m == -INFINITY ? 0.0f : std::exp(m - mc);
      m = mc;
    }
    l = l * alpha + ExpSum(x, valid, m);
  }
  for (int64_t i = std::max<int64_t>(valid, 0); i < n; ++i) x[i] = 0.0f;
  return alpha;
}

}  // namespace

void Attention(ThreadPool& pool, MemoryAccount* account, const AttnArgs& a, bool use_dnnl, bool bf16) {
  if (a.heads <= 0 || a.kv_heads <= 0 || a.heads % a.kv_heads != 0 || a.hd <= 0)
    throw Error("attention: bad head counts");
  if (a.n_q <= 0) return;
  const int group = a.heads / a.kv_heads;
  const int64_t hd = a.hd, QB = 128;
  std::vector<Item> items;
  if (a.segments) {
    if (a.n_q != a.n_kv) throw Error("attention: segments need as many queries as keys");
    for (int s = 0; s < a.n_segments; ++s) {
      const int64_t s0 = a.segments[s], s1 = a.segments[s + 1];
      if (s0 < 0 || s1 < s0 || s1 > a.n_q) throw Error("attention: bad segment boundaries");
      for (int h = 0; h < a.heads; ++h)
        for (int64_t i0 = s0; i0 < s1; i0 += QB)
          items.push_back(Item{a.q + i0 * a.q_row + h * hd, a.q_row, a.out + i0 * a.out_row + h * hd, a.out_row,
                               h / group, std::min(QB, s1 - i0), s0, s1, s1, 0});
    }
  } else {
    if (a.n_kv < a.n_q) throw Error("attention: fewer key slots than queries");
    const int64_t past = a.n_kv - a.n_q;
    if (a.n_q <= 4 && group > 1) {  // decode: the group's query heads are consecutive in a row
      for (int64_t i = 0; i < a.n_q; ++i)
        for (int g = 0; g < a.kv_heads; ++g)
          items.push_back(Item{a.q + i * a.q_row + g * group * hd, hd, a.out + i * a.out_row + g * group * hd, hd, g,
                               group, 0, past + i + 1, past + i + 1, 0});
    } else {
      for (int h = 0; h < a.heads; ++h)
        for (int64_t i0 = 0; i0 < a.n_q; i0 += QB) {
          const int64_t rows = std::min(QB, a.n_q - i0);
          items.push_back(Item{a.q + i0 * a.q_row + h * hd, a.q_row, a.out + i0 * a.out_row + h * hd, a.out_row,
                               h / group, rows, 0, past + i0 + rows, past + i0 + 1, 1});
        }
    }
  }
  int64_t max_span = 0, max_rows = 0;
  for (const Item& it : items) {
    max_span = std::max(max_span, it.hi - it.lo);
    max_rows = std::max(max_rows, it.rows);
  }
  const int nt = static_cast<int>(std::min<int64_t>(pool.size(), static_cast<int64_t>(items.size())));
  // bf16: prefill and vision blocks (not decode rows, which stream the cache once) as torch runs a bf16
  // model: Q, K and V rounded to bf16, scores accumulated in fp32, an fp32 softmax, the probabilities
  // rounded to bf16, P V accumulated in fp32.
  const bool b16 = bf16 && max_rows >= 16;
  Buffer kv16;
  if (b16) {
    // K and V of every KV head once, [kv_head][slot][hd] contiguous.
    kv16 = Buffer(account, MemCategory::Workspace, sizeof(uint16_t) * static_cast<size_t>(2 * a.kv_heads * a.n_kv * hd));
    uint16_t* k16 = static_cast<uint16_t*>(kv16.data());
    uint16_t* v16 = k16 + a.kv_heads * a.n_kv * hd;
    pool.ParallelFor(a.kv_heads * a.n_kv, 64, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const int64_t g = i / a.n_kv, s = i % a.n_kv;
        F32ToBf16Row(a.k + g * a.k_head + s * a.k_row, k16 + i * hd, hd);
        F32ToBf16Row(a.v + g * a.v_head + s * a.v_row, v16 + i * hd, hd);
      }
    });
  }
  // Per thread, for one item at a time: the scores of a key chunk [rows][kAttnKeyChunk] (fp32), the
  // output accumulator and one chunk's P V [rows][hd], the running max and sum per row, and for bf16 the
  // chunk's probabilities and the query rows.
  const int64_t C = kAttnKeyChunk;
  const int64_t chunk = std::min(C, max_span);
  auto up16 = [](int64_t n) { return (n + 15) / 16 * 16; };
  const int64_t s_floats = up16(max_rows * chunk), o_floats = up16(max_rows * hd), ml_floats = up16(2 * max_rows);
  const int64_t b16_floats = b16 ? up16((max_rows * chunk + max_rows * hd + 1) / 2) : 0;
  const int64_t per_thread = s_floats + 2 * o_floats + ml_floats + b16_floats;
  Buffer scratch(account, MemCategory::Workspace, sizeof(float) * static_cast<size_t>(per_thread * nt));
  pool.Run(nt, [&](int t, int ntt) {
    const int64_t n_items = static_cast<int64_t>(items.size());
    const int64_t b = n_items * t / ntt, e = n_items * (t + 1) / ntt;
    float* S = scratch.f() + per_thread * t;
    float* O = S + s_floats;
    float* T = O + o_floats;
    float* rm = T + o_floats;
    float* rl = rm + max_rows;
    uint16_t* P16 = reinterpret_cast<uint16_t*>(rm + ml_floats);
    uint16_t* Q16 = P16 + max_rows * chunk;
    for (int64_t w = b; w < e; ++w) {
      const Item& it = items[w];
      const int64_t R = it.rows;
      std::fill(rm, rm + R, -INFINITY);
      std::fill(rl, rl + R, 0.0f);
      std::fill(O, O + R * hd, 0.0f);
      const uint16_t* k16 = nullptr;
      const uint16_t* v16 = nullptr;
      if (b16) {
        k16 = static_cast<const uint16_t*>(kv16.data()) + (it.g * a.n_kv + it.lo) * hd;
        v16 = k16 + a.kv_heads * a.n_kv * hd;
        for (int64_t r = 0; r < R; ++r) F32ToBf16Row(it.q + r * it.q_ld, Q16 + r * hd, hd);
      }
      const float* kp = a.k + it.g * a.k_head + it.lo * a.k_row;
      const float* vp = a.v + it.g * a.v_head + it.lo * a.v_row;
      for (int64_t c0 = it.lo; c0 < it.hi; c0 += C) {
        const int64_t cn = std::min(C, it.hi - c0), off = c0 - it.lo;
        if (b16)
          Bf16GemmSingle(R, cn, hd, Q16, hd, k16 + off * hd, hd, true, S, cn);
        else
          SgemmSingle(use_dnnl, true, R, cn, hd, it.q, it.q_ld, kp + off * a.k_row, a.k_row, S, cn);
        for (int64_t r = 0; r < R; ++r) {
          const int64_t hi = std::min(it.hi, it.causal_hi0 + r * it.causal_step);
          const float alpha = SoftmaxChunk(S + r * cn, cn, std::min(hi - c0, cn), a.scale, rm[r], rl[r]);
          if (alpha != 1.0f)
            for (int64_t d = 0; d < hd; ++d) O[r * hd + d] *= alpha;
          if (b16) F32ToBf16Row(S + r * cn, P16 + r * cn, cn);
        }
        // The first chunk's P V is the accumulator itself; later ones are added to it.
        float* dst = c0 == it.lo ? O : T;
        if (b16)
          Bf16GemmSingle(R, hd, cn, P16, cn, v16 + off * hd, hd, false, dst, hd);
        else
          SgemmSingle(use_dnnl, false, R, hd, cn, S, cn, vp + off * a.v_row, a.v_row, dst, hd);
        if (dst == T)
          for (int64_t i = 0; i < R * hd; ++i) O[i] += T[i];
      }
      for (int64_t r = 0; r < R; ++r) {
        const float inv = 1.0f / rl[r];
        float* out = it.out + r * it.out_ld;
        for (int64_t d = 0; d < hd; ++d) out[d] = O[r * hd + d] * inv;
      }
    }
  });
}

}  // namespace starkv::cpu
