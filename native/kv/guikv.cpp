// GUI-KV (GUIKVCluster.update_kv, SalesforceAIResearch/GUI-KV): SnapKV scores + spatial saliency
// boost on the current frame + temporal redundancy: previous-frame tokens whose keys are best
// explained by the span of the first r current-frame keys (QR basis) get score 0; then per query
// head top-(cap - w). Residuals are computed once per KV head (the reference's repeated heads are
// identical) and broadcast to its query heads.
#include <algorithm>
#include <cmath>
#include <string>

#include "kv/kernels.h"
#include "kv/methods.h"
#include "kv/snapkv_core.h"

namespace starkv::kv {
namespace {

// Orthonormal basis (double, row-major r x d, flat) of the span of `rows` key vectors, by modified
// Gram-Schmidt with re-orthogonalisation (same span as the first r columns of Householder QR).
// Returns the number of basis vectors.
int OrthoBasis(const float* keys, int64_t rows, int d, std::vector<double>& q) {
  q.clear();
  int r = 0;
  std::vector<double> v(d);
  for (int64_t i = 0; i < rows; ++i) {
    v.assign(keys + i * d, keys + (i + 1) * d);
    double n0 = 0.0;
    for (double x : v) n0 += x * x;
    n0 = std::sqrt(n0);
    for (int pass = 0; pass < 2; ++pass)
      for (int bi = 0; bi < r; ++bi) {
        const double* b = q.data() + static_cast<int64_t>(bi) * d;
        double c = 0.0;
        for (int j = 0; j < d; ++j) c += b[j] * v[j];
        for (int j = 0; j < d; ++j) v[j] -= c * b[j];
      }
    double n = 0.0;
    for (double x : v) n += x * x;
    n = std::sqrt(n);
    if (k::GsDependent(n, n0)) continue;  // linearly dependent key: adds no direction
    for (double& x : v) x /= n;
    q.insert(q.end(), v.begin(), v.end());
    ++r;
  }
  return r;
}

}  // namespace

void GuiKvResiduals(const LayerInputs& in, int64_t cur_start, int rank, const std::vector<int64_t>& positions,
                    std::vector<float>& res) {
  const int d = in.head_dim;
  const int64_t n = static_cast<int64_t>(positions.size());
  res.assign(static_cast<size_t>(in.num_kv_heads) * n, 0.0f);
  for (int g = 0; g < in.num_kv_heads; ++g) {
    const float* kg = HostKeys(in, "guikv residuals") + static_cast<int64_t>(g) * in.kv_capacity * d;
    std::vector<double> basis;
    const int nb = OrthoBasis(kg + cur_start * d, rank, d, basis);
    std::vector<double> coef(std::max(nb, 1));
    for (int64_t i = 0; i < n; ++i)
      res[g * n + i] = static_cast<float>(k::ResidualNorm(kg + positions[i] * d, basis.data(), nb, d, coef.data()));
  }
}

namespace {

class GuiKv final : public KvMethod {
 public:
  const char* Name() const override { return "guikv"; }
  MethodParams Defaults() const override {
    MethodParams p;
    p.window = 8;
    p.kernel = 5;
    p.pooling = Pooling::Avg;
    p.alpha = 2.0;
    p.saliency_temperature = 3.5;
    p.qr_rank = 32;
    p.granularity = Granularity::QueryHead;
    return p;
  }
  void Compress(const LayerInputs& in, const Budget& budget, const MethodParams& p, LayerState& state,
                Selection& out, Telemetry& tel) const override {
    ValidateLayer(in, 0);
    state.calls++;
    const int64_t L = in.seq_len, cap = BudgetCap(budget, L);
    if (L < cap) return NoCompression(in, cap, out, tel);
    const int64_t W = ClampWindow(p.window, cap, false, L), P = L - W;
    ValidateLayer(in, W);
    const int H = in.num_heads, Hkv = in.num_kv_heads, G = H / Hkv, d = in.head_dim;
    std::vector<float> scores;
    SnapKvScores(in, W, p, scores, &tel);
    tel.branch = "snapkv_only";
    // The reference runs both steps only when hidden states are given and a frame exists.
    if (in.hidden && !in.spans.empty()) {
      const Span cur = in.spans.back();
      if (p.alpha > 0) {
        const std::vector<float> boost = SaliencyBoost(in, cur, p.alpha, p.saliency_temperature);
        for (int h = 0; h < H; ++h)
          for (int64_t i = 0; i < static_cast<int64_t>(boost.size()); ++i)
            if (cur.start + i < P) scores[static_cast<int64_t>(h) * P + cur.start + i] += boost[i];
        if (p.debug) tel.Add("spatial_boost_last_span", {static_cast<int64_t>(boost.size())}, boost);
        tel.branch = "spatial";
      }
      if (in.spans.size() > 1) TemporalZeroing(in, cur, cap, p, scores, P, G, d, Hkv, tel);
    }
    if (p.debug) tel.Add("final_scores_per_head", {H, P}, scores);
    const int rows = ReduceForGranularity(scores, H, Hkv, P, p.granularity);
    out = Compressed(p.granularity, cap, W, P);
    SelectPerRow(scores, rows, P, cap - W, out);
  }

 private:
  static void TemporalZeroing(const LayerInputs& in, Span cur, int64_t cap, const MethodParams& p,
                              std::vector<float>& scores, int64_t P, int G, int d, int Hkv, Telemetry& tel) {
    const int64_t n_last = cur.end - cur.start;
    const int64_t r = std::min<int64_t>({static_cast<int64_t>(p.qr_rank), n_last, static_cast<int64_t>(d)});
    std::vector<int64_t> positions;
    for (size_t f = 0; f + 1 < in.spans.size(); ++f)
      for (int64_t j = in.spans[f].start; j < in.spans[f].end; ++j) positions.push_back(j);
    const int64_t n_prev = static_cast<int64_t>(positions.size());
    const double ratio = static_cast<double>(cap) / static_cast<double>(in.seq_len);
    const int64_t nz = static_cast<int64_t>((1.0 - ratio) * static_cast<double>(n_prev));
    std::vector<float> all_res;
    std::vector<float> zero_mask;
    std::vector<float> res_all;
    if (in.key_residuals) in.key_residuals(cur.start, static_cast<int>(r), positions, res_all);  // where the keys live
    else GuiKvResiduals(in, cur.start, static_cast<int>(r), positions, res_all);
    if (static_cast<int64_t>(res_all.size()) != Hkv * n_prev)
      throw KvError("guikv residuals: got " + std::to_string(res_all.size()) + " values for " + std::to_string(Hkv) +
                    " KV heads x " + std::to_string(n_prev) + " previous-frame slots");
    for (int g = 0; g < Hkv; ++g) {
      const float* res = res_all.data() + g * n_prev;
      if (nz > 0) {
        std::vector<float> neg(n_prev);
        for (int64_t i = 0; i < n_prev; ++i) neg[i] = -res[i];  // smallest residuals first
        const std::vector<int64_t> sel = TopK(neg.data(), n_prev, nz);
        for (int j = 0; j < G; ++j)
          for (int64_t i : sel)
            if (positions[i] < P) scores[static_cast<int64_t>(g * G + j) * P + positions[i]] = 0.0f;
        if (p.debug) {
          std::vector<float> z;
          for (int64_t i : Sorted(sel)) z.push_back(static_cast<float>(positions[i]));
          for (int j = 0; j < G; ++j) zero_mask.insert(zero_mask.end(), z.begin(), z.end());
        }
      }
      if (p.debug)
        for (int j = 0; j < G; ++j) all_res.insert(all_res.end(), res, res + n_prev);
    }
    tel.branch = "spatial_temporal_qr";
    if (p.debug) {
      tel.Add("temporal_qr_residual_norms", {static_cast<int64_t>(Hkv) * G, n_prev}, all_res);
      tel.Add("temporal_qr_zeroed_positions", {static_cast<int64_t>(Hkv) * G, nz > 0 ? std::min(nz, n_prev) : 0}, zero_mask);
      tel.Add("temporal_qr_meta", {3}, {static_cast<float>(r), static_cast<float>(nz), static_cast<float>(n_prev)});
    }
  }
};

}  // namespace

const KvMethod& GuiKvMethod() {
  static const GuiKv m;
  return m;
}

}  // namespace starkv::kv
