// AdaKV (FFY0/AdaKV adaptive SnapKV, GQA mean): per-head budgets inside a layer. With B = cap - w
// past slots per head on average: n_h = how many of the global top-(rows * B) scores head h owns,
// n'_h = round(n_h (1 - alpha) + int(alpha B)), each head keeps its own top-n'_h (+ the window).
// Defaults from the AdaKV README: window 32, kernel 7, maxpool, floor alpha 0.5; KV-head rows.
#include <algorithm>
#include <cmath>

#include "kv/kernels.h"
#include "kv/methods.h"
#include "kv/snapkv_core.h"

namespace starkv::kv {
namespace {

class AdaKv final : public KvMethod {
 public:
  const char* Name() const override { return "adakv"; }
  MethodParams Defaults() const override {
    MethodParams p;
    p.window = 32;
    p.kernel = 7;
    p.pooling = Pooling::Max;
    p.floor_alpha = 0.5;
    p.granularity = Granularity::KvHead;
    return p;
  }
  void Compress(const LayerInputs& in, const Budget& budget, const MethodParams& p, LayerState& state,
                Selection& out, Telemetry& tel) const override {
    ValidateLayer(in, 0);
    if (!(p.floor_alpha >= 0 && p.floor_alpha <= 1)) throw KvError("adakv floor_alpha must be in [0, 1]");
    state.calls++;
    const int64_t L = in.seq_len, cap = BudgetCap(budget, L);
    if (L < cap) return NoCompression(in, cap, out, tel);
    const int64_t W = ClampWindow(p.window, cap, false, L), P = L - W;
    ValidateLayer(in, W);
    std::vector<float> scores;
    SnapKvScores(in, W, p, scores, &tel);
    const int rows = ReduceForGranularity(scores, in.num_heads, in.num_kv_heads, P, p.granularity);
    const int64_t B = std::max<int64_t>(0, std::min(cap - W, P));
    // global top-(rows * B) over (row, slot), ties: higher score, then lower flat index
    const std::vector<int64_t> top = TopK(scores.data(), static_cast<int64_t>(rows) * P, static_cast<int64_t>(rows) * B);
    std::vector<int64_t> n(rows, 0);
    for (int64_t f : top) n[f / P]++;
    const int64_t floor_cap = static_cast<int64_t>(static_cast<double>(B) * p.floor_alpha);
    out = Compressed(p.granularity, cap, W, P);
    std::vector<float> budgets(rows);
    for (int r = 0; r < rows; ++r) {
      const int64_t nr = k::AdaKvHeadBudget(n[r], p.floor_alpha, floor_cap, P);
      budgets[r] = static_cast<float>(nr);
      std::vector<int64_t> order = TopK(scores.data() + static_cast<int64_t>(r) * P, P, nr);
      out.kept.push_back(Sorted(order));
      out.gather_order.push_back(std::move(order));
      out.k_keep = std::max(out.k_keep, nr);
    }
    if (p.debug) tel.Add("head_budgets", {rows}, budgets);
    tel.branch = "adakv";
  }
};

}  // namespace

const KvMethod& AdaKvMethod() {
  static const AdaKv m;
  return m;
}

}  // namespace starkv::kv
