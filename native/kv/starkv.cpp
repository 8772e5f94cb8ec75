// STaR-KV (STARKVGroupCluster.update_kv, soft_global): SnapKV core -> spatial saliency boost ->
// AEB temperature -> group scores S -> online MI prior (beta per token from its argmax group) ->
// temporal stability discount -> AEB sharpening -> one global top-K shared by all heads.
// Options beyond the reference: per_query_head (select per head), mi_true_grid,
// vlcache_layer_budgets (per-layer caps from VL-Cache's sparsity rule, passed as Budget::cap_tokens).
#include <algorithm>
#include <cmath>

#include "kv/kernels.h"
#include "kv/methods.h"
#include "kv/snapkv_core.h"
#include "kv/starkv_parts.h"

namespace starkv::kv {
namespace {

class StarKv final : public KvMethod {
 public:
  const char* Name() const override { return "starkv"; }
  MethodParams Defaults() const override {  // examples/repro_ssp_kv.sh
    MethodParams p;
    p.window = 8;
    p.window_min1 = true;
    p.kernel = 5;
    p.pooling = Pooling::Avg;
    p.granularity = Granularity::Shared;
    p.alpha = 2.0;
    p.saliency_temperature = 3.5;
    p.lambda = 0.5;
    p.profile_steps = 5;
    p.mi_decay = 0.9;
    p.mi_tau = 1.0;
    p.lambda_ramp_steps = 10;
    p.temporal = true;
    p.temporal_delta = 0.1;
    p.temporal_rho = 0.9;
    p.temporal_eps = 0.0;
    p.temporal_discount_min = 0.0;
    p.temporal_warmup = 0;
    p.aeb = true;
    p.aeb_min = 0.75;
    p.aeb_max = 1.25;
    p.aeb_smooth = 0.0;
    return p;
  }
  bool NeedsPrepass(const MethodParams& p) const override { return p.vlcache_layer_budgets; }
  double Prepass(const LayerInputs& in, const MethodParams& p) const override {
    if (!p.vlcache_layer_budgets) return KvMethod::Prepass(in, p);  // throws: no pre-pass
    return VlCacheSparsity(in, p);
  }

  void Compress(const LayerInputs& in, const Budget& budget, const MethodParams& p, LayerState& st, Selection& out,
                Telemetry& tel) const override {
    ValidateLayer(in, 0);
    st.calls++;
    if (p.temporal) st.temporal_step += 1;  // before anything else, even without compression
    tel.temporal_step = st.temporal_step;
    const int64_t L = in.seq_len, cap = BudgetCap(budget, L);
    if (L < cap) return NoCompression(in, cap, out, tel);
    const int64_t W = ClampWindow(p.window, cap, p.window_min1, L), P = L - W;
    ValidateLayer(in, W);
    const int H = in.num_heads, Hkv = in.num_kv_heads;

    std::vector<float> pooled;
    SnapKvScores(in, W, p, pooled, &tel);
    // spans clipped to the past; remember the grid of the current frame if it survived unclipped
    const std::vector<Span> spans = ClipSpans(in.spans, P);
    GridHW grid;
    if (!spans.empty() && !in.span_grids.empty()) {
      for (size_t i = in.spans.size(); i-- > 0;)
        if (in.spans[i].start == spans.back().start && in.spans[i].end == spans.back().end) {
          grid = in.span_grids[i];
          break;
        }
    }
    const Span* cur = spans.empty() ? nullptr : &spans.back();
    if (p.alpha > 0 && in.hidden && cur) {
      const std::vector<float> boost = SaliencyBoost(in, *cur, p.alpha, p.saliency_temperature);
      for (int h = 0; h < H; ++h)
        for (int64_t i = 0; i < cur->end - cur->start; ++i) pooled[static_cast<int64_t>(h) * P + cur->start + i] += boost[i];
      if (p.debug) tel.Add("spatial_boost_last_span", {cur->end - cur->start}, boost);
    }
    const double T = AebTemperature(pooled, H, P, p, st, tel);
    const int64_t k_keep = std::max<int64_t>(1, std::min(cap - W, P));

    std::vector<float> S, base;
    GroupMean(pooled, H, Hkv, P, S);
    GroupMean(pooled, H, 1, P, base);
    const MiPriorResult prior = OnlineMiPrior(S, Hkv, P, cur, grid, p, st, tel);
    std::vector<int> g_star(P, 0);
    for (int64_t t = 0; t < P; ++t) g_star[t] = k::ArgmaxGroupAt(S.data() + t, P, Hkv);
    std::vector<float> scaled(P);
    for (int64_t t = 0; t < P; ++t) scaled[t] = k::MiPrior(base[t], prior.w_g[g_star[t]], Hkv, prior.lambda_eff);
    if (p.debug) {
      tel.Add("S_group_scores", {Hkv, P}, S);
      tel.Add("g_star", {P}, std::vector<float>(g_star.begin(), g_star.end()));
      tel.Add("scaled_after_mi_prior", {P}, scaled);
    }
    std::vector<float> D;
    TemporalDiscount(scaled, S, g_star, Hkv, P, spans, p, st, tel, &D);
    if (p.debug) tel.Add("scaled_after_temporal", {P}, scaled);
    const bool sharpen = p.aeb && T > 0;
    const float inv_t = sharpen ? static_cast<float>(1.0 / T) : 1.0f;

    out = Selection();
    out.compressed = true;
    out.cap = cap;
    out.window = W;
    out.past_len = P;
    if (!p.per_query_head) {
      std::vector<float> fin(scaled);
      if (sharpen)
        for (float& x : fin) x = k::AebSharpen(x, inv_t);
      if (p.debug) tel.Add("final_scores", {P}, fin);
      out.granularity = Granularity::Shared;
      SelectPerRow(fin, 1, P, k_keep, out);
    } else {  // option: the same calibration applied to each query head's own scores
      std::vector<float> fin(static_cast<size_t>(H) * P);
      for (int h = 0; h < H; ++h)
        for (int64_t t = 0; t < P; ++t)
          fin[static_cast<int64_t>(h) * P + t] =
              k::FuseScore(pooled[static_cast<int64_t>(h) * P + t], prior.w_g[g_star[t]], Hkv, prior.lambda_eff,
                           !D.empty(), D.empty() ? 1.0f : D[t], sharpen, inv_t);
      if (p.debug) tel.Add("final_scores_per_head", {H, P}, fin);
      out.granularity = Granularity::QueryHead;
      SelectPerRow(fin, H, P, k_keep, out);
    }
    tel.branch = "starkv";
  }
};

}  // namespace

const KvMethod& StarKvMethod() {
  static const StarKv m;
  return m;
}

}  // namespace starkv::kv
