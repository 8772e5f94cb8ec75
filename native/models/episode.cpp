// Persistent-episode compression: builds each layer's inputs for native/kv from the stored slots and
// the turn's stash, runs the method, and compacts the layer in place.
#include "models/episode.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "kv/compact.h"

namespace starkv::qwen2vl {

TurnStash::TurnStash(int layers, int heads, int head_dim, int64_t q_keep, FrameSpan frame, bool has_frame)
    : heads_(heads), hd_(head_dim), q_keep_(q_keep), frame_(frame), has_frame_(has_frame),
      q_(layers), norms_(layers) {
  for (auto& n : norms_) n.assign(has_frame ? static_cast<size_t>(frame.end - frame.start) : 0, 0.0f);
}

LayerObserver::Rows TurnStash::Needs(int64_t n, int64_t first_token) const {
  Rows r;
  r.q_from = std::max<int64_t>(0, n - q_keep_);
  if (has_frame_) {  // the frame's tokens in this block
    r.norm_lo = std::clamp<int64_t>(frame_.start - first_token, 0, n);
    r.norm_hi = std::max(r.norm_lo, std::clamp<int64_t>(frame_.end - first_token, 0, n));
  }
  return r;
}

void TurnStash::OnLayer(int layer, const float* q, const float* norms, const Rows& rows, int64_t n,
                        int64_t first_token) {
  const int64_t row = static_cast<int64_t>(heads_) * hd_;
  std::vector<float>& keep = q_[layer];
  keep.insert(keep.end(), q, q + (n - rows.q_from) * row);
  const int64_t kept = static_cast<int64_t>(keep.size()) / row;
  if (kept > q_keep_) keep.erase(keep.begin(), keep.begin() + (kept - q_keep_) * row);
  for (int64_t i = rows.norm_lo; i < rows.norm_hi; ++i)
    norms_[layer][first_token + i - frame_.start] = norms[i - rows.norm_lo];
}

std::vector<float> TurnStash::Queries(int layer) const {
  const int64_t rows = QRows(layer), row = static_cast<int64_t>(heads_) * hd_;
  std::vector<float> out(q_[layer].size());
  for (int64_t i = 0; i < rows; ++i)
    for (int h = 0; h < heads_; ++h)
      std::copy_n(q_[layer].data() + i * row + h * hd_, hd_, out.data() + (h * rows + i) * hd_);
  return out;
}

Episode::Episode(Backend* backend, const Config& c)
    : kv(backend, c.layers, c.kv_heads, c.head_dim), states(static_cast<size_t>(c.layers)) {}

void Episode::ClearCache() {
  kv.Clear();
  frames.clear();
  turns = 0;
}

void Episode::Reset() {
  ClearCache();
  for (auto& s : states) s.Reset();
}

int64_t Episode::HeldBytes() const {
  int64_t slots = 0;
  for (int l = 0; l < kv.layers(); ++l) slots += kv.Length(l);
  return slots * kv.kv_heads() * kv.head_dim() * 2 * static_cast<int64_t>(sizeof(float));
}

kv::MethodParams PolicyParams(const kv::KvMethod& m, const std::vector<std::pair<std::string, double>>& nums,
                              const std::vector<std::pair<std::string, std::string>>& strs) {
  kv::MethodParams p = m.Defaults();
  // The store keeps one slot list per layer (one source token per slot, shared by the KV heads), so
  // per-head selections are reduced to one shared list; `granularity` may still be set explicitly.
  if (p.granularity != kv::Granularity::Shared) p.granularity = kv::Granularity::Shared;
  for (const auto& [k, v] : nums) kv::SetParam(p, k, v);
  for (const auto& [k, v] : strs) kv::SetParamString(p, k, v);
  return p;
}

namespace {

// CompactLayer for a store in device memory: the selection is checked here, the backend moves the key
// and value rows where they live, then the slot tokens (host memory) are compacted alike.
int64_t CompactDeviceLayer(KvStore& kv, int l, int64_t seq_len, const kv::Selection& sel) {
  kv::CompactLayer(nullptr, nullptr, kv.kv_heads(), kv.capacity(), kv.head_dim(), seq_len, sel, nullptr);  // checks
  std::vector<int64_t> kept;
  for (const auto& list : sel.kept) kept.insert(kept.end(), list.begin(), list.end());
  if (!kv.backend()->KvCompact(kv.Keys(l), kv.Values(l), kv.kv_heads(), kv.capacity(), kv.head_dim(), kept.data(),
                               static_cast<int>(sel.kept.size()), static_cast<int64_t>(sel.kept[0].size()),
                               sel.past_len, sel.window))
    throw Error("episode: the " + kv.backend()->Name() + " backend cannot compact a KV store in its memory");
  return kv::CompactLayer(nullptr, nullptr, kv.kv_heads(), kv.capacity(), kv.head_dim(), seq_len, sel, kv.SlotTokens(l));
}

// Window sums of layer l of a device store, computed on the device (the methods' window_sums hook).
std::function<void(int64_t, std::vector<float>&)> DeviceWindowSums(KvStore& kv, int l, const kv::LayerInputs& in) {
  return [&kv, l, &in](int64_t W, std::vector<float>& sums) {
    sums.assign(static_cast<size_t>(in.num_heads) * (in.seq_len - W), 0.0f);
    if (!kv.backend()->KvWindowSums(kv.Keys(l), kv.capacity(), in.num_kv_heads, in.queries, in.q_rows, in.num_heads,
                                    in.head_dim, in.seq_len, W, sums.data()))
      throw Error("episode: the " + kv.backend()->Name() + " backend cannot score a KV store in its memory");
  };
}

// H2O's accumulated attention of layer l of a device store, on the device (the accumulated_sums hook).
std::function<void(int64_t, std::vector<float>&)> DeviceAccumulatedSums(KvStore& kv, int l, const kv::LayerInputs& in) {
  return [&kv, l, &in](int64_t rows, std::vector<float>& sums) {
    sums.assign(static_cast<size_t>(in.num_heads) * in.seq_len, 0.0f);
    if (!kv.backend()->KvAccumulatedSums(kv.Keys(l), kv.capacity(), in.num_kv_heads, in.queries, in.q_rows,
                                         in.num_heads, in.head_dim, in.seq_len, rows, sums.data()))
      throw Error("episode: the " + kv.backend()->Name() + " backend cannot accumulate attention in its memory");
  };
}

// VL-Cache's sparsity counts of layer l of a device store, on the device (the zero_counts hook).
std::function<void(int64_t, float, std::vector<int64_t>&)> DeviceZeroCounts(KvStore& kv, int l, const kv::LayerInputs& in) {
  return [&kv, l, &in](int64_t rows, float threshold, std::vector<int64_t>& zeros) {
    zeros.assign(static_cast<size_t>(in.num_heads) * rows, 0);
    if (!kv.backend()->KvZeroCounts(kv.Keys(l), kv.capacity(), in.num_kv_heads, in.queries, in.q_rows, in.num_heads,
                                    in.head_dim, in.seq_len, rows, threshold, zeros.data()))
      throw Error("episode: the " + kv.backend()->Name() + " backend cannot measure sparsity in its memory");
  };
}

// GUI-KV's key residuals of layer l of a device store, on the device (the key_residuals hook).
std::function<void(int64_t, int, const std::vector<int64_t>&, std::vector<float>&)> DeviceResiduals(
    KvStore& kv, int l, const kv::LayerInputs& in) {
  return [&kv, l, &in](int64_t cur_start, int rank, const std::vector<int64_t>& positions, std::vector<float>& res) {
    const int64_t n = static_cast<int64_t>(positions.size());
    res.assign(static_cast<size_t>(in.num_kv_heads) * n, 0.0f);
    if (!kv.backend()->KvResiduals(kv.Keys(l), kv.capacity(), in.num_kv_heads, in.head_dim, cur_start, rank,
                                   positions.data(), n, res.data()))
      throw Error("episode: the " + kv.backend()->Name() + " backend cannot compute key residuals in its memory");
  };
}

// The slots [first, last) of the layer whose source tokens fall in [start, end) (slots are in token order).
kv::Span SlotSpan(const int64_t* tokens, int64_t len, int64_t start, int64_t end) {
  const int64_t a = std::lower_bound(tokens, tokens + len, start) - tokens;
  const int64_t b = std::lower_bound(tokens, tokens + len, end) - tokens;
  return {a, b};
}

}  // namespace

std::vector<LayerReport> CompressTurn(Episode& ep, const KvPolicy& policy, const TurnStash& stash, const Config& c,
                                      int threads) {
  const int layers = c.layers;
  std::vector<LayerReport> reports(static_cast<size_t>(layers));
  std::vector<kv::LayerInputs> inputs(static_cast<size_t>(layers));
  std::vector<std::vector<float>> queries(static_cast<size_t>(layers));
  const bool host_kv = ep.kv.backend()->HostAccessible();
  // A device store: window sums, accumulated attention, sparsity counts, key residuals and compaction run
  // on the device; the methods read keys only through those hooks (LayerInputs::keys stays null).
  for (int l = 0; l < layers; ++l) {
    kv::LayerInputs& in = inputs[l];
    const int64_t L = ep.kv.Length(l);
    const int64_t* tok = ep.kv.SlotTokens(l);
    in.num_heads = c.heads;
    in.num_kv_heads = c.kv_heads;
    in.head_dim = c.head_dim;
    in.seq_len = L;
    if (host_kv) {
      in.keys = ep.kv.Keys(l);
    } else {
      in.window_sums = DeviceWindowSums(ep.kv, l, in);
      in.zero_counts = DeviceZeroCounts(ep.kv, l, in);
      in.key_residuals = DeviceResiduals(ep.kv, l, in);
      in.accumulated_sums = DeviceAccumulatedSums(ep.kv, l, in);
    }
    in.kv_capacity = ep.kv.capacity();
    queries[l] = stash.Queries(l);
    in.queries = queries[l].data();
    in.q_rows = stash.QRows(l);
    in.slot_positions = tok;
    if (stash.has_frame()) {
      for (const FrameSpan& f : ep.frames) {
        const kv::Span s = SlotSpan(tok, L, f.start, f.end);
        if (s.end > s.start) {
          in.spans.push_back(s);
          in.span_grids.push_back({f.rows, f.cols});
        }
      }
      const kv::Span cur = in.spans.back();  // the turn's frame: all of its slots were just appended
      if (cur.end - cur.start != stash.frame().end - stash.frame().start)
        throw Error("episode: the current frame's slots are incomplete before compression");
      in.hidden = stash.Norms(l).data();  // L2 norms as 1-wide rows: the methods only use row norms
      in.hidden_size = 1;
      in.hidden_row0 = cur.start;
      in.hidden_rows = cur.end - cur.start;
      in.last_vision_index = cur.end;
    }
  }
  std::vector<kv::MethodParams> params(static_cast<size_t>(layers), policy.params);
  for (int l = 0; l < layers; ++l) {
    params[l].layer_idx = l;
    params[l].num_layers = layers;
  }
  if (policy.method && policy.method->NeedsPrepass(policy.params)) {
    std::vector<double> gammas(static_cast<size_t>(layers));
    for (int l = 0; l < layers; ++l) gammas[l] = policy.method->Prepass(inputs[l], params[l]);
    const std::vector<int64_t> budgets = kv::AllocateLayerBudgets(gammas, inputs[0].seq_len, policy.budget, policy.params);
    for (int l = 0; l < layers; ++l) params[l].layer_budget = budgets[l];
  }
  // Layers are independent (own inputs, state and slots): compress them on `threads` threads.
  auto one = [&](int l) {
    LayerReport& rep = reports[l];
    if (policy.method) {
      kv::Selection sel;
      policy.method->Compress(inputs[l], policy.budget, params[l], ep.states[l], sel, rep.tel);
      // The layer's own budget where the method splits the budget over layers (PyramidKV, VL-Cache), else
      // the uniform cap(L, b).
      rep.cap = rep.tel.layer_budget >= 0 ? rep.tel.layer_budget : sel.cap;
      rep.compressed = sel.compressed;
      if (sel.compressed) {
        int64_t n;
        if (host_kv) {
          n = kv::CompactLayer(ep.kv.Keys(l), ep.kv.Values(l), c.kv_heads, ep.kv.capacity(), c.head_dim,
                               inputs[l].seq_len, sel, ep.kv.SlotTokens(l));
        } else {
          n = CompactDeviceLayer(ep.kv, l, inputs[l].seq_len, sel);
        }
        ep.kv.SetLength(l, n);
      }
    }
    const int64_t* tok = ep.kv.SlotTokens(l);
    rep.slot_tokens.assign(tok, tok + ep.kv.Length(l));
  };
  std::atomic<int> next{0};
  std::exception_ptr error;
  std::mutex error_mu;
  auto worker = [&] {
    for (int l = next++; l < layers; l = next++) {
      try {
        one(l);
      } catch (...) {
        std::lock_guard<std::mutex> g(error_mu);
        if (!error) error = std::current_exception();
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < std::min(threads, layers); ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
  return reports;
}

}  // namespace starkv::qwen2vl
