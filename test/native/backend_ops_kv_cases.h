// backend_ops_test's rows for the backend's KV-compression hooks (Backend::KvWindowSums, KvCompact):
// what an episode's compression does to a store in backend memory. On a host-accessible backend the
// case runs the host path the engine uses there (kv::WindowAttentionSums, kv::CompactLayer); on a
// device backend it runs the hook. Both are compared with a double reference (CPU) and with each other.
// Included by backend_ops_test.cpp after its helpers (Randn, Mem, Add, Fmt, ToD).
#pragma once

#include "kv/compact.h"
#include "kv/snapkv_core.h"

namespace {

// keys [Hkv][cap][d], queries [H][q_rows][d] (row r = slot L - q_rows + r); window rows are the last W.
void KvWindowSumsCase(int heads, int kv_heads, int hd, int64_t cap, int64_t L, int64_t q_rows, int64_t W) {
  const std::vector<float> keys = Randn(kv_heads * cap * hd), q = Randn(heads * q_rows * hd);
  const int64_t P = L - W;
  const int G = heads / kv_heads;
  std::vector<double> ref(static_cast<size_t>(heads * P), 0.0);
  for (int h = 0; h < heads; ++h)
    for (int64_t i = 0; i < W; ++i) {
      const float* qi = q.data() + (h * q_rows + q_rows - W + i) * hd;
      const int64_t visible = P + i + 1;
      std::vector<double> lg(static_cast<size_t>(visible));
      double m = -INFINITY, z = 0.0;
      for (int64_t j = 0; j < visible; ++j) {
        const float* kj = keys.data() + ((h / G) * cap + j) * hd;
        double s = 0.0;
        for (int c = 0; c < hd; ++c) s += static_cast<double>(qi[c]) * kj[c];
        lg[j] = s / std::sqrt(static_cast<double>(hd));
        m = std::max(m, lg[j]);
      }
      for (double& v : lg) z += (v = std::exp(v - m));
      for (int64_t j = 0; j < P; ++j) ref[h * P + j] += lg[j] / z;
    }
  Add(Fmt("kv_window_sums H=%d Hkv=%d d=%d L=%lld W=%lld", heads, kv_heads, hd, (long long)L, (long long)W),
      [=](Backend& be) {
        std::vector<float> sums(static_cast<size_t>(heads * P));
        if (be.HostAccessible()) {
          kv::LayerInputs in;
          in.num_heads = heads;
          in.num_kv_heads = kv_heads;
          in.head_dim = hd;
          in.seq_len = L;
          in.keys = keys.data();
          in.kv_capacity = cap;
          in.queries = q.data();
          in.q_rows = q_rows;
          kv::WindowAttentionSums(in, W, sums);
        } else {
          Mem mem(be);
          if (!be.KvWindowSums(mem.Put(keys), cap, kv_heads, q.data(), q_rows, heads, hd, L, W, sums.data()))
            throw Error("the backend has no KvWindowSums");
        }
        return sums;
      },
      ref, 1e-5, 1e-5);
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
  KvWindowSumsCase(4, 2, 64, 48, 37, 8, 8);       // GQA 2, window = all stashed rows
  KvWindowSumsCase(7, 1, 128, 320, 300, 40, 32);  // GQA 7, several key tiles, more stashed rows than W
  KvWindowSumsCase(2, 2, 80, 130, 130, 3, 1);     // one window row, full capacity
  KvCompactCase(2, 64, 50, 32, 8, {EveryNth(32, 3, 1)});
  KvCompactCase(4, 128, 300, 249, 8, {EveryNth(249, 5, 0), EveryNth(249, 5, 1), EveryNth(249, 5, 2),
                                      EveryNth(249, 5, 3)});
  KvCompactCase(1, 80, 20, 12, 5, {{}});  // nothing kept but the window
}

}  // namespace
