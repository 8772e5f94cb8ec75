// backend_ops_test's rows for the backend's KV-compression hooks (Backend::KvWindowSums, KvAccumulatedSums,
// KvZeroCounts, KvResiduals, KvCompact): what an episode's compression does to a store in backend memory. On a
// host-accessible backend the case runs the host path the engine uses there (kv::WindowAttentionSums,
// kv::AccumulatedAttentionSums, kv::VlCacheZeroCounts, kv::GuiKvResiduals, kv::CompactLayer); on a device backend it runs the hook.
// Both are compared with a double reference (CPU) and with each other.
// Included by backend_ops_test.cpp after its helpers (Randn, Mem, Add, Fmt, ToD).
#pragma once

#include "kv/compact.h"
#include "kv/methods.h"
#include "kv/snapkv_core.h"

namespace {

kv::LayerInputs HostLayer(int heads, int kv_heads, int hd, int64_t cap, int64_t L, const std::vector<float>& keys,
                          const std::vector<float>& q, int64_t q_rows) {
  kv::LayerInputs in;
  in.num_heads = heads;
  in.num_kv_heads = kv_heads;
  in.head_dim = hd;
  in.seq_len = L;
  in.keys = keys.data();
  in.kv_capacity = cap;
  in.queries = q.data();
  in.q_rows = q_rows;
  return in;
}

// Double-precision softmax of <q, k> / sqrt(hd) over keys [0, visible) of one KV head.
std::vector<double> RefProbs(const float* q, const float* kh, int hd, int64_t visible) {
  std::vector<double> p(static_cast<size_t>(visible));
  double m = -INFINITY, z = 0.0;
  for (int64_t j = 0; j < visible; ++j) {
    double s = 0.0;
    for (int c = 0; c < hd; ++c) s += static_cast<double>(q[c]) * kh[j * hd + c];
    m = std::max(m, p[j] = s / std::sqrt(static_cast<double>(hd)));
  }
  for (double& v : p) z += (v = std::exp(v - m));
  for (double& v : p) v /= z;
  return p;
}

// keys [Hkv][cap][d], queries [H][q_rows][d] (row r = slot L - q_rows + r); the scoring rows are the last W.
// Window sums: the W rows' probabilities summed for the past slots t < P = L - W. Accumulated (H2O): for
// every slot t < L, summed over the rows that see it.
void KvColumnSumsCase(int heads, int kv_heads, int hd, int64_t cap, int64_t L, int64_t q_rows, int64_t W,
                      bool accumulated) {
  if (accumulated && W != q_rows) throw Error("an accumulated-attention case scores every stashed row");
  const std::vector<float> keys = Randn(kv_heads * cap * hd), q = Randn(heads * q_rows * hd);
  const int64_t P = L - W, cols = accumulated ? L : P;
  const int G = heads / kv_heads;
  std::vector<double> ref(static_cast<size_t>(heads * cols), 0.0);
  for (int h = 0; h < heads; ++h)
    for (int64_t i = 0; i < W; ++i) {
      const std::vector<double> pr = RefProbs(q.data() + (h * q_rows + q_rows - W + i) * hd,
                                              keys.data() + (h / G) * cap * hd, hd, P + i + 1);
      for (int64_t j = 0; j < std::min<int64_t>(cols, P + i + 1); ++j) ref[h * cols + j] += pr[j];
    }
  Add(Fmt(accumulated ? "kv_accumulated_sums H=%d Hkv=%d d=%d L=%lld rows=%lld"
                      : "kv_window_sums H=%d Hkv=%d d=%d L=%lld W=%lld",
          heads, kv_heads, hd, (long long)L, (long long)W),
      [=](Backend& be) {
        std::vector<float> sums(static_cast<size_t>(heads * cols));
        if (be.HostAccessible()) {
          const kv::LayerInputs in = HostLayer(heads, kv_heads, hd, cap, L, keys, q, q_rows);
          if (accumulated) {
            kv::AccumulatedAttentionSums(in, sums);  // H2O scores every stashed row
          } else {
            kv::WindowAttentionSums(in, W, sums);
          }
        } else {
          Mem mem(be);
          const bool ok = accumulated
                              ? be.KvAccumulatedSums(mem.Put(keys), cap, kv_heads, q.data(), q_rows, heads, hd, L, W,
                                                     sums.data())
                              : be.KvWindowSums(mem.Put(keys), cap, kv_heads, q.data(), q_rows, heads, hd, L, W,
                                                sums.data());
          if (!ok) throw Error(accumulated ? "the backend has no KvAccumulatedSums" : "the backend has no KvWindowSums");
        }
        return sums;
      },
      ref, 1e-5, 1e-5);
}

// VL-Cache's sparsity counts of the last `rows` query rows: per (head, row), the visible keys whose eager
// softmax probability is not above `thr` (as floats; a borderline probability may round either way).
void KvZeroCountsCase(int heads, int kv_heads, int hd, int64_t cap, int64_t L, int64_t q_rows, int64_t rows, float thr) {
  const std::vector<float> keys = Randn(kv_heads * cap * hd), q = Randn(heads * q_rows * hd);
  const int G = heads / kv_heads;
  std::vector<double> ref;
  for (int h = 0; h < heads; ++h)
    for (int64_t i = 0; i < rows; ++i) {
      double zeros = 0;
      for (double v : RefProbs(q.data() + (h * q_rows + q_rows - rows + i) * hd, keys.data() + (h / G) * cap * hd, hd,
                               L - rows + i + 1))
        zeros += v > thr ? 0 : 1;
      ref.push_back(zeros);
    }
  Add(Fmt("kv_zero_counts H=%d Hkv=%d d=%d L=%lld rows=%lld thr=%g", heads, kv_heads, hd, (long long)L,
          (long long)rows, thr),
      [=](Backend& be) {
        std::vector<int64_t> zeros(static_cast<size_t>(heads * rows));
        if (be.HostAccessible()) {
          kv::VlCacheZeroCounts(HostLayer(heads, kv_heads, hd, cap, L, keys, q, q_rows), rows, thr, zeros);
        } else {
          Mem mem(be);
          if (!be.KvZeroCounts(mem.Put(keys), cap, kv_heads, q.data(), q_rows, heads, hd, L, rows, thr, zeros.data()))
            throw Error("the backend has no KvZeroCounts");
        }
        return std::vector<float>(zeros.begin(), zeros.end());
      },
      ref, 1e-3, 1e-3);
}

// GUI-KV's residuals: per KV head, the Gram-Schmidt basis of the keys of [cur, cur + rank) and each
// listed key's distance to its span. `dup`: the current frame's second key repeats its first (a
// dependent key that adds no direction).
void KvResidualsCase(int kv_heads, int hd, int64_t cap, int64_t cur, int rank, std::vector<int64_t> positions,
                     bool dup) {
  std::vector<float> keys = Randn(kv_heads * cap * hd);
  if (dup)
    for (int g = 0; g < kv_heads; ++g)
      std::copy_n(keys.begin() + (g * cap + cur) * hd, hd, keys.begin() + (g * cap + cur + 1) * hd);
  const int64_t n = static_cast<int64_t>(positions.size());
  std::vector<double> ref;
  for (int g = 0; g < kv_heads; ++g) {
    std::vector<std::vector<double>> basis;
    for (int r = 0; r < rank; ++r) {
      const float* k = keys.data() + (g * cap + cur + r) * hd;
      std::vector<double> v(k, k + hd);
      double n0 = 0.0;
      for (double x : v) n0 += x * x;
      for (int pass = 0; pass < 2; ++pass)
        for (const auto& b : basis) {
          double c = 0.0;
          for (int j = 0; j < hd; ++j) c += b[j] * v[j];
          for (int j = 0; j < hd; ++j) v[j] -= c * b[j];
        }
      double nv = 0.0;
      for (double x : v) nv += x * x;
      if (std::sqrt(nv) <= 1e-10 * std::sqrt(n0)) continue;
      for (double& x : v) x /= std::sqrt(nv);
      basis.push_back(v);
    }
    for (int64_t i = 0; i < n; ++i) {
      const float* k = keys.data() + (g * cap + positions[i]) * hd;
      std::vector<double> v(k, k + hd);
      for (const auto& b : basis) {
        double c = 0.0;
        for (int j = 0; j < hd; ++j) c += b[j] * k[j];
        for (int j = 0; j < hd; ++j) v[j] -= c * b[j];
      }
      double nv = 0.0;
      for (double x : v) nv += x * x;
      ref.push_back(std::sqrt(nv));
    }
  }
  Add(Fmt("kv_residuals Hkv=%d d=%d rank=%d n=%lld%s", kv_heads, hd, rank, (long long)n, dup ? " (dependent key)" : ""),
      [=](Backend& be) {
        std::vector<float> res;
        if (be.HostAccessible()) {
          const std::vector<float> no_q;
          kv::GuiKvResiduals(HostLayer(1, kv_heads, hd, cap, cap, keys, no_q, 0), cur, rank, positions, res);
        } else {
          Mem mem(be);
          res.assign(static_cast<size_t>(kv_heads * n), 0.0f);
          if (!be.KvResiduals(mem.Put(keys), cap, kv_heads, hd, cur, rank, positions.data(), n, res.data()))
            throw Error("the backend has no KvResiduals");
        }
        return res;
      },
      ref, 1e-6, 1e-6);
}

std::vector<int64_t> Range(int64_t a, int64_t b) {
  std::vector<int64_t> v;
  for (int64_t s = a; s < b; ++s) v.push_back(s);
  return v;
}

// Keeps `kept` (lists = 1 shared, or one list per KV head) then the window [past, past + window).
// Output: the first new_len rows of every head, keys then values.
void KvCompactCase(int kv_heads, int hd, int64_t cap, int64_t past, int64_t window,
                   std::vector<std::vector<int64_t>> kept) {
  const std::vector<float> keys = Randn(kv_heads * cap * hd), values = Randn(kv_heads * cap * hd);
  const int64_t n_keep = static_cast<int64_t>(kept[0].size()), new_len = n_keep + window;
  std::vector<double> ref;
  for (const std::vector<float>* t : {&keys, &values})
    for (int g = 0; g < kv_heads; ++g)
      for (int64_t r = 0; r < new_len; ++r) {
        const int64_t s = r < n_keep ? kept[kept.size() == 1 ? 0 : g][r] : past + r - n_keep;
        for (int c = 0; c < hd; ++c) ref.push_back((*t)[(g * cap + s) * hd + c]);
      }
  Add(Fmt("kv_compact Hkv=%d d=%d lists=%zu keep=%lld of %lld + window %lld", kv_heads, hd, kept.size(),
          (long long)n_keep, (long long)past, (long long)window),
      [=](Backend& be) {
        kv::Selection sel;
        sel.compressed = true;
        sel.granularity = kept.size() == 1 ? kv::Granularity::Shared : kv::Granularity::KvHead;
        sel.window = window;
        sel.past_len = past;
        sel.kept = kept;
        std::vector<float> k = keys, v = values;
        if (be.HostAccessible()) {
          kv::CompactLayer(k.data(), v.data(), kv_heads, cap, hd, past + window, sel, nullptr);
        } else {
          Mem mem(be);
          float* dk = mem.Put(keys);
          float* dv = mem.Put(values);
          std::vector<int64_t> flat;
          for (const auto& l : kept) flat.insert(flat.end(), l.begin(), l.end());
          if (!be.KvCompact(dk, dv, kv_heads, cap, hd, flat.data(), static_cast<int>(kept.size()), n_keep, past, window))
            throw Error("the backend has no KvCompact");
          k = mem.Get(dk, kv_heads * cap * hd);
          v = mem.Get(dv, kv_heads * cap * hd);
        }
        std::vector<float> out;
        for (const std::vector<float>* t : {&k, &v})
          for (int g = 0; g < kv_heads; ++g)
            out.insert(out.end(), t->begin() + g * cap * hd, t->begin() + (g * cap + new_len) * hd);
        return out;
      },
      ref, 0.0, 0.0);
}

std::vector<int64_t> EveryNth(int64_t past, int64_t step, int64_t offset) {
  std::vector<int64_t> v;
  for (int64_t s = offset; s < past; s += step) v.push_back(s);
  return v;
}

void KvHookCases() {
  KvColumnSumsCase(4, 2, 64, 48, 37, 8, 8, false);       // GQA 2, window = all stashed rows
  KvColumnSumsCase(7, 1, 128, 320, 300, 40, 32, false);  // GQA 7, several key tiles, more stashed rows than W
  KvColumnSumsCase(2, 2, 80, 130, 130, 3, 1, false);     // one window row, full capacity
  KvColumnSumsCase(4, 2, 64, 48, 37, 8, 8, true);        // H2O: GQA 2, window keys causally masked
  KvColumnSumsCase(7, 1, 128, 320, 300, 64, 64, true);   // GQA 7, the episode's 64 stashed rows, key tiles
  KvColumnSumsCase(2, 2, 80, 40, 40, 40, 40, true);      // every slot a query row (a first prefill), full capacity
  KvZeroCountsCase(4, 2, 64, 80, 70, 8, 8, 0.01f);      // GQA 2, every stashed row
  KvZeroCountsCase(7, 1, 128, 300, 257, 40, 33, 0.01f);  // GQA 7, key tiles with a ragged last one
  KvZeroCountsCase(2, 2, 80, 40, 40, 5, 1, 0.001f);      // one row, full capacity
  KvResidualsCase(2, 64, 90, 60, 16, Range(3, 57), false);          // two KV heads, one earlier frame
  KvResidualsCase(4, 128, 400, 300, 32, Range(0, 280), true);       // 7B head_dim, a dependent key
  KvResidualsCase(1, 80, 50, 40, 10, {1, 5, 6, 30, 39}, false);     // scattered slots, rank < frame
  KvCompactCase(2, 64, 50, 32, 8, {EveryNth(32, 3, 1)});
  KvCompactCase(4, 128, 300, 249, 8, {EveryNth(249, 5, 0), EveryNth(249, 5, 1), EveryNth(249, 5, 2),
                                      EveryNth(249, 5, 3)});
  KvCompactCase(1, 80, 20, 12, 5, {{}});  // nothing kept but the window
}

}  // namespace
