// SnapKV core: validation, budget arithmetic, window attention column sums, pooling, saliency, top-K.
#include "kv/snapkv_core.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "kv/kernels.h"

namespace starkv::kv {

namespace {
std::string S(int64_t v) { return std::to_string(v); }
}  // namespace

void ValidateLayer(const LayerInputs& in, int64_t need_q_rows) {
  if (in.num_heads <= 0 || in.num_kv_heads <= 0 || in.head_dim <= 0)
    throw KvError("num_heads, num_kv_heads and head_dim must be positive (got " + S(in.num_heads) + ", " +
                  S(in.num_kv_heads) + ", " + S(in.head_dim) + ")");
  if (in.num_heads % in.num_kv_heads != 0)
    throw KvError("num_heads (" + S(in.num_heads) + ") is not a multiple of num_kv_heads (" + S(in.num_kv_heads) + ")");
  if (in.seq_len < 1) throw KvError("seq_len must be >= 1 (got " + S(in.seq_len) + ")");
  if (!in.keys && !in.window_sums && !in.accumulated_sums) throw KvError("keys are missing");
  if (in.kv_capacity < in.seq_len)
    throw KvError("kv_capacity (" + S(in.kv_capacity) + ") is smaller than seq_len (" + S(in.seq_len) + ")");
  if (need_q_rows > 0) {
    if (!in.queries) throw KvError("queries are missing");
    if (in.q_rows < need_q_rows || in.q_rows > in.seq_len)
      throw KvError("the method needs the queries of the last " + S(need_q_rows) + " slots but q_rows is " +
                    S(in.q_rows) + " (seq_len " + S(in.seq_len) + ")");
  }
  for (size_t i = 0; i < in.spans.size(); ++i) {
    const Span& s = in.spans[i];
    if (s.start < 0 || s.end < s.start || s.end > in.seq_len)
      throw KvError("vision span " + S(static_cast<int64_t>(i)) + " [" + S(s.start) + ", " + S(s.end) +
                    ") is not inside [0, " + S(in.seq_len) + ")");
  }
  if (!in.span_grids.empty() && in.span_grids.size() != in.spans.size())
    throw KvError("span_grids has " + S(static_cast<int64_t>(in.span_grids.size())) + " entries for " +
                  S(static_cast<int64_t>(in.spans.size())) + " spans");
  if (in.hidden) {
    if (in.hidden_size <= 0 || in.hidden_rows < 0 || in.hidden_row0 < 0 || in.hidden_row0 + in.hidden_rows > in.seq_len)
      throw KvError("hidden rows [" + S(in.hidden_row0) + ", " + S(in.hidden_row0 + in.hidden_rows) +
                    ") x " + S(in.hidden_size) + " do not fit seq_len " + S(in.seq_len));
  }
  if (in.last_vision_index > in.seq_len)
    throw KvError("last_vision_index " + S(in.last_vision_index) + " is past seq_len " + S(in.seq_len));
}

const float* HostKeys(const LayerInputs& in, const char* who) {
  if (!in.keys) throw KvError(std::string(who) + " reads the keys on the host, but none were given");
  return in.keys;
}

int64_t BudgetCap(const Budget& b, int64_t seq_len) {
  if (b.cap_tokens >= 0) return b.cap_tokens;
  if (!std::isfinite(b.percent) || b.percent < 0) throw KvError("budget percent must be a finite number >= 0");
  const int64_t ref = b.ref_len >= 0 ? b.ref_len : seq_len;
  const double v = static_cast<double>(ref) * (b.percent / 100.0);
  if (v > 9e15) throw KvError("budget too large");
  return static_cast<int64_t>(v);
}

int64_t ClampWindow(int64_t w_cfg, int64_t cap, bool min1, int64_t seq_len) {
  int64_t w = std::min(w_cfg, cap - 2);
  if (min1) w = std::max<int64_t>(1, w);
  w = std::max<int64_t>(1, w);
  return std::min(w, std::max<int64_t>(1, seq_len - 1));
}

namespace {

// sums[h * cols + t] for keys t < cols: the sum over the last W query rows of the causal fp32 softmax,
// each row adding only the keys it sees (the host side of WindowColsum / AccumulatedColsum).
void HostColumnSums(const LayerInputs& in, int64_t W, int64_t cols, std::vector<float>& sums) {
  const float* keys = HostKeys(in, "attention sums");
  const int64_t L = in.seq_len;
  const int H = in.num_heads, d = in.head_dim, G = in.num_heads / in.num_kv_heads;
  sums.assign(static_cast<size_t>(H) * cols, 0.0f);
  const float scale = k::SqrtHeadDim(d);
  std::vector<float> logits(L);
  std::vector<double> acc(cols);
  for (int h = 0; h < H; ++h) {
    const float* kh = keys + static_cast<int64_t>(h / G) * in.kv_capacity * d;
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t i = 0; i < W; ++i) {
      const float* q = in.queries + (static_cast<int64_t>(h) * in.q_rows + (in.q_rows - W + i)) * d;
      const int64_t visible = L - W + i + 1;  // keys [0, visible)
      float m = -INFINITY;
      for (int64_t j = 0; j < visible; ++j) {
        logits[j] = k::WindowLogit(q, kh + j * d, d, scale);
        m = std::max(m, logits[j]);
      }
      double z = 0.0;
      for (int64_t j = 0; j < visible; ++j) {
        logits[j] = k::ExpShift(logits[j], m);
        z += logits[j];
      }
      const float zf = static_cast<float>(z);
      const int64_t n = std::min(cols, visible);
      for (int64_t j = 0; j < n; ++j) acc[j] += static_cast<double>(k::SoftmaxProb(logits[j], zf));
    }
    float* out = sums.data() + static_cast<int64_t>(h) * cols;
    for (int64_t j = 0; j < cols; ++j) out[j] = static_cast<float>(acc[j]);
  }
}

// A hook's result must have one value per head and column.
void CheckHookSums(const char* what, const std::vector<float>& sums, int H, int64_t cols) {
  if (sums.size() != static_cast<size_t>(H) * cols)
    throw KvError(std::string(what) + ": got " + S(static_cast<int64_t>(sums.size())) + " values for " + S(H) +
                  " heads x " + S(cols) + " slots");
}

}  // namespace

void WindowAttentionSums(const LayerInputs& in, int64_t W, std::vector<float>& sums) {
  const int64_t P = in.seq_len - W;
  if (W < 1 || P < 0 || W > in.q_rows) throw KvError("window " + S(W) + " does not fit q_rows " + S(in.q_rows));
  if (!in.window_sums) return HostColumnSums(in, W, P, sums);
  in.window_sums(W, sums);  // computed where the keys live
  CheckHookSums("window sums", sums, in.num_heads, P);
}

void AccumulatedAttentionSums(const LayerInputs& in, std::vector<float>& sums) {
  const int64_t W = std::min(in.q_rows, in.seq_len);
  if (W < 1) throw KvError("accumulated attention needs at least one query row");
  if (!in.accumulated_sums) return HostColumnSums(in, W, in.seq_len, sums);
  in.accumulated_sums(W, sums);  // computed where the keys live
  CheckHookSums("accumulated attention", sums, in.num_heads, in.seq_len);
}

void PoolRows(const std::vector<float>& x, int rows, int64_t P, int kernel, Pooling pooling, std::vector<float>& out) {
  if (kernel < 1) throw KvError("pooling kernel must be >= 1");
  out.assign(static_cast<size_t>(rows) * P, 0.0f);
  for (int r = 0; r < rows; ++r) {
    const float* xr = x.data() + static_cast<int64_t>(r) * P;
    float* o = out.data() + static_cast<int64_t>(r) * P;
    for (int64_t t = 0; t < P; ++t)
      o[t] = pooling == Pooling::Avg ? k::AvgPoolAt(xr, P, t, kernel) : k::MaxPoolAt(xr, P, t, kernel);
  }
}

void SnapKvScores(const LayerInputs& in, int64_t W, const MethodParams& p, std::vector<float>& pooled, Telemetry* tel) {
  std::vector<float> sums;
  WindowAttentionSums(in, W, sums);
  const int64_t P = in.seq_len - W;
  PoolRows(sums, in.num_heads, P, p.kernel, p.pooling, pooled);
  if (tel && p.debug) {
    tel->Add("attn_weights_sum_per_head", {in.num_heads, P}, sums);
    tel->Add("pooled_attn_cache_per_head", {in.num_heads, P}, pooled);
  }
}

std::vector<float> SaliencyBoost(const LayerInputs& in, Span span, double alpha, double temperature) {
  const int64_t n = span.end - span.start;
  std::vector<float> boost(std::max<int64_t>(n, 0), 0.0f);
  if (n <= 0) return boost;
  if (!in.hidden || span.start < in.hidden_row0 || span.end > in.hidden_row0 + in.hidden_rows)
    throw KvError("hidden states do not cover the current frame [" + S(span.start) + ", " + S(span.end) + ")");
  if (!(temperature > 0)) throw KvError("saliency temperature must be > 0");
  std::vector<float> r(n);
  for (int64_t i = 0; i < n; ++i) {
    const float* x = in.hidden + (span.start + i - in.hidden_row0) * in.hidden_size;
    r[i] = k::NormFromSumSquares(k::SumSquares(x, 0, in.hidden_size, 1));
  }
  double mean = 0.0;
  for (float v : r) mean += v;
  mean /= static_cast<double>(n);
  double var = 0.0;
  for (float v : r) var += (v - mean) * (v - mean);
  // torch.std is unbiased; a 1-token span (NaN in the reference) gets std 0 here.
  const double sd = k::UnbiasedStd(var, n);
  std::vector<double> z(n);
  double zmax = -INFINITY;
  for (int64_t i = 0; i < n; ++i) {
    z[i] = k::SaliencyLogit(r[i], mean, sd, temperature);
    zmax = std::max(zmax, z[i]);
  }
  double tot = 0.0;
  for (int64_t i = 0; i < n; ++i) tot += (z[i] = k::SaliencyExp(z[i], zmax));
  for (int64_t i = 0; i < n; ++i) boost[i] = k::SaliencyWeight(z[i], tot, alpha);
  return boost;
}

void GroupMean(const std::vector<float>& per_head, int H, int Hkv, int64_t P, std::vector<float>& out) {
  const int G = H / Hkv;
  out.assign(static_cast<size_t>(Hkv) * P, 0.0f);
  for (int g = 0; g < Hkv; ++g)
    for (int64_t t = 0; t < P; ++t)
      out[static_cast<int64_t>(g) * P + t] = k::GroupMeanAt(per_head.data() + static_cast<int64_t>(g * G) * P + t, P, G);
}

std::vector<int64_t> TopK(const float* scores, int64_t n, int64_t k) {
  k = std::max<int64_t>(0, std::min(k, n));
  std::vector<int64_t> idx(n);
  for (int64_t i = 0; i < n; ++i) idx[i] = i;
  auto better = [scores](int64_t a, int64_t b) { return k::Better(scores[a], a, scores[b], b); };
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), better);
  idx.resize(k);
  return idx;
}

std::vector<int64_t> Sorted(std::vector<int64_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

void SelectPerRow(const std::vector<float>& scores, int rows, int64_t P, int64_t k, Selection& out) {
  out.kept.clear();
  out.gather_order.clear();
  for (int r = 0; r < rows; ++r) {
    std::vector<int64_t> order = TopK(scores.data() + static_cast<int64_t>(r) * P, P, k);
    out.kept.push_back(Sorted(order));
    out.gather_order.push_back(std::move(order));
  }
  out.k_keep = std::max<int64_t>(0, std::min(k, P));
}

std::vector<Span> ClipSpans(const std::vector<Span>& spans, int64_t limit) {
  std::vector<Span> out;
  for (const Span& s0 : spans) {
    const int64_t s = std::max<int64_t>(0, std::min(s0.start, limit));
    const int64_t e = std::max(s, std::min(s0.end, limit));
    if (e > s) out.push_back({s, e});
  }
  return out;
}

}  // namespace starkv::kv

namespace starkv::kv {

int ReduceForGranularity(std::vector<float>& scores, int H, int Hkv, int64_t P, Granularity g) {
  if (g == Granularity::QueryHead) return H;
  std::vector<float> out;
  if (g == Granularity::KvHead) {
    GroupMean(scores, H, Hkv, P, out);
    scores.swap(out);
    return Hkv;
  }
  GroupMean(scores, H, 1, P, out);
  scores.swap(out);
  return 1;
}

void NoCompression(const LayerInputs& in, int64_t cap, Selection& out, Telemetry& tel) {
  out = Selection();
  out.compressed = false;
  out.cap = cap;
  out.window = 0;
  out.past_len = in.seq_len;
  out.k_keep = in.seq_len;
  tel.branch = "no_compression";
}

Selection Compressed(Granularity g, int64_t cap, int64_t W, int64_t P) {
  Selection out;
  out.compressed = true;
  out.granularity = g;
  out.cap = cap;
  out.window = W;
  out.past_len = P;
  return out;
}

}  // namespace starkv::kv
