// VL-Cache as re-implemented in the GUI-KV repo (VLCacheCluster + the wrapper's gamma/beta rule):
// a pre-pass measures each layer's post-vision attention sparsity gamma (fraction of causal
// attention weights <= 0.01 in the rows after the last image), layer budgets follow
// beta_l = clamp((1-gamma_l)/sum(1-gamma), 0.001, 1); then every post-vision token is the window
// and the past is scored by the SnapKV core with those window queries, per query head.
#include <algorithm>
#include <cmath>
#include <string>

#include "kv/kernels.h"
#include "kv/methods.h"
#include "kv/snapkv_core.h"

namespace starkv::kv {

namespace {
int64_t LastVisionIndex(const LayerInputs& in) {
  if (in.last_vision_index >= 0) return in.last_vision_index;
  if (in.spans.empty()) throw KvError("vlcache needs the image spans (or last_vision_index)");
  return in.spans.back().end;
}
}  // namespace

void VlCacheZeroCounts(const LayerInputs& in, int64_t rows, float threshold, std::vector<int64_t>& zeros) {
  const int64_t L = in.seq_len;
  const int H = in.num_heads, G = H / in.num_kv_heads, d = in.head_dim;
  // eager attention: (q k^T) * d^-0.5 with a causal mask, fp32 softmax
  const float scaling = k::InvSqrtHeadDim(d);
  std::vector<float> row(L);
  zeros.assign(static_cast<size_t>(H) * rows, 0);
  for (int h = 0; h < H; ++h) {
    const float* kh = HostKeys(in, "vlcache sparsity") + static_cast<int64_t>(h / G) * in.kv_capacity * d;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t i = L - rows + r;
      const float* q = in.queries + (static_cast<int64_t>(h) * in.q_rows + (in.q_rows - rows + r)) * d;
      float m = -INFINITY;
      for (int64_t j = 0; j <= i; ++j) {
        row[j] = k::EagerLogit(q, kh + j * d, d, scaling);
        m = std::max(m, row[j]);
      }
      double z = 0.0;
      for (int64_t j = 0; j <= i; ++j) z += (row[j] = k::ExpShift(row[j], m));
      const float zf = static_cast<float>(z);
      int64_t above = 0;
      for (int64_t j = 0; j <= i; ++j) above += k::AboveThreshold(k::SoftmaxProb(row[j], zf), threshold) ? 1 : 0;
      zeros[static_cast<int64_t>(h) * rows + r] = i + 1 - above;
    }
  }
}

double VlCacheGammaFromZeros(const std::vector<int64_t>& zeros, int num_heads, int64_t rows, int64_t seq_len) {
  if (static_cast<int64_t>(zeros.size()) != num_heads * rows)
    throw KvError("vlcache sparsity: " + std::to_string(zeros.size()) + " zero counts for " +
                  std::to_string(num_heads) + " heads x " + std::to_string(rows) + " rows");
  // 1.0 - (mask).float().mean().item() per head: fp32 mean, then a double subtraction;
  // torch.tensor(gammas).mean().item(): fp32 values and mean
  float s = 0.0f;
  for (int h = 0; h < num_heads; ++h) {
    int64_t above = 0, valid = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t visible = seq_len - rows + r + 1;
      above += visible - zeros[static_cast<int64_t>(h) * rows + r];
      valid += visible;
    }
    s += static_cast<float>(k::SparsityFromCounts(above, valid));
  }
  return static_cast<double>(s / static_cast<float>(num_heads));
}

double VlCacheSparsity(const LayerInputs& in, const MethodParams& p) {
  ValidateLayer(in, 0);
  const int64_t L = in.seq_len, lvi = LastVisionIndex(in), rows = L - lvi;
  if (rows < 1) throw KvError("vlcache sparsity needs at least one query row after the last image");
  ValidateLayer(in, rows);
  const float thr = static_cast<float>(p.sparsity_threshold);
  std::vector<int64_t> zeros;
  if (in.zero_counts) in.zero_counts(rows, thr, zeros);  // where the keys live
  else VlCacheZeroCounts(in, rows, thr, zeros);
  return VlCacheGammaFromZeros(zeros, in.num_heads, rows, L);
}

std::vector<int64_t> AllocateLayerBudgets(const std::vector<double>& gammas, int64_t seq_len, const Budget& budget,
                                          const MethodParams& p, std::vector<double>* betas_out) {
  if (gammas.empty()) throw KvError("layer budgets need at least one layer's gamma");
  const int64_t NL = static_cast<int64_t>(gammas.size());
  float z = 0.0f;
  for (double g : gammas) z += 1.0f - static_cast<float>(g);
  const int64_t cap = BudgetCap(budget, seq_len);
  const float total = static_cast<float>(cap * NL);
  std::vector<int64_t> out;
  if (betas_out) betas_out->clear();
  for (double g : gammas) {
    float beta = (1.0f - static_cast<float>(g)) / z;
    if (!(beta == beta)) beta = static_cast<float>(p.beta_min);  // all layers fully sparse
    beta = std::min(std::max(beta, static_cast<float>(p.beta_min)), static_cast<float>(p.beta_max));
    if (betas_out) betas_out->push_back(beta);
    out.push_back(static_cast<int64_t>(total * beta));
  }
  return out;
}

namespace {

class VlCache final : public KvMethod {
 public:
  const char* Name() const override { return "vlcache"; }
  MethodParams Defaults() const override {
    MethodParams p;
    p.kernel = 5;
    p.pooling = Pooling::Avg;
    p.sparsity_threshold = 0.01;
    p.beta_min = 0.001;
    p.beta_max = 1.0;
    p.granularity = Granularity::QueryHead;
    return p;
  }
  bool NeedsPrepass(const MethodParams&) const override { return true; }
  double Prepass(const LayerInputs& in, const MethodParams& p) const override { return VlCacheSparsity(in, p); }
  void Compress(const LayerInputs& in, const Budget& budget, const MethodParams& p, LayerState& state,
                Selection& out, Telemetry& tel) const override {
    ValidateLayer(in, 0);
    if (p.layer_budget < 0)
      throw KvError("vlcache needs params.layer_budget (from AllocateLayerBudgets over every layer's gamma)");
    state.calls++;
    const int64_t L = in.seq_len, lvi = LastVisionIndex(in);
    const int64_t lb = p.layer_budget;
    int64_t W = L - lvi, k;
    if (lb > W) {
      k = lb - W;
      tel.branch = "layer_budget_gt_window";
    } else {
      k = 1;
      W = lb - 1;
      tel.branch = "layer_budget_le_window";
    }
    if (W < 1)
      throw KvError("vlcache layer budget " + std::to_string(lb) + " leaves no window: the budget is too small for VL-Cache at this prompt length (the reference raises here too)");
    const int64_t P = L - W;
    ValidateLayer(in, W);
    std::vector<float> scores;
    SnapKvScores(in, W, p, scores, &tel);
    const int rows = ReduceForGranularity(scores, in.num_heads, in.num_kv_heads, P, p.granularity);
    out = Compressed(p.granularity, BudgetCap(budget, L), W, P);
    // k > P keeps every past slot, k <= 0 none (reference)
    SelectPerRow(scores, rows, P, std::max<int64_t>(0, std::min(k, P)), out);
    tel.layer_budget = lb;
  }
};

}  // namespace

const KvMethod& VlCacheMethod() {
  static const VlCache m;
  return m;
}

}  // namespace starkv::kv
