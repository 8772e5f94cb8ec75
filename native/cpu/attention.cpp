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
  __m512 mv = _mm512_set1_ps(-INFINITY), m1 = mv, m2 = mv, m3 = mv;  // four chains: vmaxps latency
  for (; i + 64 <= valid; i += 64) {
    const __m512 v0 = _mm512_mul_ps(_mm512_loadu_ps(x + i), sc), v1 = _mm512_mul_ps(_mm512_loadu_ps(x + i + 16), sc);
    const __m512 v2 = _mm512_mul_ps(_mm512_loadu_ps(x + i + 32), sc), v3 = _mm512_mul_ps(_mm512_loadu_ps(x + i + 48), sc);
    _mm512_storeu_ps(x + i, v0);
    _mm512_storeu_ps(x + i + 16, v1);
    _mm512_storeu_ps(x + i + 32, v2);
    _mm512_storeu_ps(x + i + 48, v3);
    mv = _mm512_max_ps(mv, v0);
    m1 = _mm512_max_ps(m1, v1);
    m2 = _mm512_max_ps(m2, v2);
    m3 = _mm512_max_ps(m3, v3);
  }
  for (; i + 16 <= valid; i += 16) {
    const __m512 v = _mm512_mul_ps(_mm512_loadu_ps(x + i), sc);
    _mm512_storeu_ps(x + i, v);
    mv = _mm512_max_ps(mv, v);
  }
  m = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(mv, m1), _mm512_max_ps(m2, m3)));
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

// Terms exp(x[i] - m) for i < valid, written back to x (fp32) or, with kBf16, to p16 rounded to bf16
// (the bf16 path's probabilities, without a second pass over the chunk); returns the sum of the fp32
// terms. Two accumulators (vaddps latency).
template <bool kBf16>
float ExpSum(float* x, int64_t valid, float m, uint16_t* p16) {
  float sum = 0.0f;
  int64_t i = 0;
#if defined(__AVX512F__)
  const __m512 mm = _mm512_set1_ps(m);
  auto put = [&](int64_t at, __m512 e) {
    if constexpr (kBf16) _mm256_storeu_si256(reinterpret_cast<__m256i*>(p16 + at), Bf16x16(e));
    else _mm512_storeu_ps(x + at, e);
  };
  __m512 s0 = _mm512_setzero_ps(), s1 = s0;
  for (; i + 32 <= valid; i += 32) {
    const __m512 e0 = Exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), mm));
    const __m512 e1 = Exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i + 16), mm));
    put(i, e0);
    put(i + 16, e1);
    s0 = _mm512_add_ps(s0, e0);
    s1 = _mm512_add_ps(s1, e1);
  }
  for (; i + 16 <= valid; i += 16) {
    const __m512 e = Exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), mm));
    put(i, e);
    s0 = _mm512_add_ps(s0, e);
  }
  sum = Hsum(_mm512_add_ps(s0, s1));
  if (i < valid) {
    const __mmask16 k = TailMask(valid - i);
    const __m512 e = _mm512_maskz_mov_ps(k, Exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), mm)));
    if constexpr (kBf16) {
      alignas(32) uint16_t t[16];  // (a masked 16-bit store would need AVX512BW)
      _mm256_store_si256(reinterpret_cast<__m256i*>(t), Bf16x16(e));
      std::copy(t, t + (valid - i), p16 + i);
    } else {
      _mm512_mask_storeu_ps(x + i, k, e);
    }
    sum += Hsum(e);
    i = valid;
  }
#elif defined(STARKV_AVX2)
  if constexpr (!kBf16) {  // (the bf16 path needs AVX512-BF16: no AVX2 build runs it)
    const __m256 mm = _mm256_set1_ps(m);
    __m256 sv = _mm256_setzero_ps();
    for (; i + 8 <= valid; i += 8) {
      const __m256 e = Exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), mm));
      _mm256_storeu_ps(x + i, e);
      sv = _mm256_add_ps(sv, e);
    }
    sum = Hsum8(sv);
  }
#endif
  for (; i < valid; ++i) {
    const float e = std::exp(x[i] - m);
    if constexpr (kBf16) p16[i] = F32ToBf16(e);
    else x[i] = e;
    sum += e;
  }
  return sum;
}

// One chunk of a row's online softmax: x [n] raw scores of which the first `valid` are unmasked.
// In place: x = exp(x * scale - m') (zeros after valid), with m' the running maximum m updated by this
// chunk; the running sum l becomes l * alpha + sum(x). Returns alpha = exp(m - m'), the factor by which
// the row's output accumulated over earlier chunks must be multiplied (1 when the chunk has no key).
// With p16, the terms go there rounded to bf16 instead (x then holds the scaled scores).
float SoftmaxChunk(float* x, int64_t n, int64_t valid, float scale, float& m, float& l, uint16_t* p16) {
  float alpha = 1.0f;
  if (valid > 0) {
    const float mc = ScaleMax(x, valid, scale);
    if (mc > m) {
      alpha = m == -INFINITY ? 0.0f : std::exp(m - mc);
      m = mc;
    }
    l = l * alpha + (p16 ? ExpSum<true>(x, valid, m, p16) : ExpSum<false>(x, valid, m, nullptr));
  }
  const int64_t z = std::max<int64_t>(valid, 0);
  if (p16) std::fill(p16 + z, p16 + n, uint16_t{0});
  else std::fill(x + z, x + n, 0.0f);
  return alpha;
}

}  // namespace

void Attention(ThreadPool& pool, MemoryAccount* account, const AttnArgs& a, bool use_dnnl, bool bf16,
               Buffer* kv_cache) {
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
  // Q and K rows of the bf16 path are zero-padded to Bf16PaddedK(hd) columns (the scores are the same):
  // with AMX, oneDNN's kernel for a depth of 80 (the vision heads) runs at less than half its rate at 96.
  const int64_t hdp = b16 ? Bf16PaddedK(hd) : hd;
  Buffer local;
  Buffer& kv16 = kv_cache ? *kv_cache : local;
  if (b16) {
    // K and V of every KV head once, [kv_head][slot][hd] contiguous.
    const size_t kv_bytes = sizeof(uint16_t) * static_cast<size_t>(a.kv_heads * a.n_kv * (hdp + hd));
    if (kv16.bytes() < kv_bytes) {
      kv16.Release();
      kv16 = Buffer(account, MemCategory::Workspace, kv_bytes);
    }
    uint16_t* k16 = static_cast<uint16_t*>(kv16.data());
    uint16_t* v16 = k16 + a.kv_heads * a.n_kv * hdp;
    pool.ParallelFor(a.kv_heads * a.n_kv, 64, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const int64_t g = i / a.n_kv, s = i % a.n_kv;
        F32ToBf16Row(a.k + g * a.k_head + s * a.k_row, k16 + i * hdp, hd);
        std::fill(k16 + i * hdp + hd, k16 + (i + 1) * hdp, uint16_t{0});
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
  const int64_t b16_floats = b16 ? up16((max_rows * chunk + max_rows * hdp + 1) / 2) : 0;
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
    if (b16) std::fill(Q16, Q16 + max_rows * hdp, uint16_t{0});  // the padding columns stay zero
    for (int64_t w = b; w < e; ++w) {
      const Item& it = items[w];
      const int64_t R = it.rows;
      std::fill(rm, rm + R, -INFINITY);
      std::fill(rl, rl + R, 0.0f);
      const uint16_t* k16 = nullptr;
      const uint16_t* v16 = nullptr;
      if (b16) {
        const uint16_t* base = static_cast<const uint16_t*>(kv16.data());
        k16 = base + (it.g * a.n_kv + it.lo) * hdp;
        v16 = base + a.kv_heads * a.n_kv * hdp + (it.g * a.n_kv + it.lo) * hd;
        for (int64_t r = 0; r < R; ++r) F32ToBf16Row(it.q + r * it.q_ld, Q16 + r * hdp, hd);
      }
      const float* kp = a.k + it.g * a.k_head + it.lo * a.k_row;
      const float* vp = a.v + it.g * a.v_head + it.lo * a.v_row;
      for (int64_t c0 = it.lo; c0 < it.hi; c0 += C) {
        const int64_t cn = std::min(C, it.hi - c0), off = c0 - it.lo;
        if (b16)
          Bf16GemmSingle(R, cn, hdp, Q16, hdp, k16 + off * hdp, hdp, true, S, cn);
        else
          SgemmSingle(use_dnnl, true, R, cn, hd, it.q, it.q_ld, kp + off * a.k_row, a.k_row, S, cn);
        for (int64_t r = 0; r < R; ++r) {
          const int64_t hi = std::min(it.hi, it.causal_hi0 + r * it.causal_step);
          const float alpha =
              SoftmaxChunk(S + r * cn, cn, std::min(hi - c0, cn), a.scale, rm[r], rl[r], b16 ? P16 + r * cn : nullptr);
          if (alpha != 1.0f && c0 != it.lo)  // (the first chunk's P V overwrites O)
            for (int64_t d = 0; d < hd; ++d) O[r * hd + d] *= alpha;
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
