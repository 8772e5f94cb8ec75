// PyramidKV as re-implemented in the GUI-KV repo (PyramidKVCluster): SnapKV scores, per-layer past
// budget decreasing linearly with depth (beta = 20), uniform SnapKV when L < 2 (cap - w).
#include <algorithm>

#include "kv/methods.h"
#include "kv/snapkv_core.h"

namespace starkv::kv {
namespace {

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

class PyramidKv final : public KvMethod {
 public:
  const char* Name() const override { return "pyramidkv"; }
  MethodParams Defaults() const override {
    MethodParams p;
    p.window = 8;
    p.kernel = 5;
    p.pooling = Pooling::Avg;
    p.pyramid_beta = 20;
    p.num_layers = 28;
    p.granularity = Granularity::QueryHead;
    return p;
  }
  void Compress(const LayerInputs& in, const Budget& budget, const MethodParams& p, LayerState& state,
                Selection& out, Telemetry& tel) const override {
    ValidateLayer(in, 0);
    if (p.num_layers < 2) throw KvError("pyramidkv needs num_layers >= 2");
    if (p.layer_idx < 0 || p.layer_idx >= p.num_layers) throw KvError("pyramidkv layer_idx out of [0, num_layers)");
    if (!(p.pyramid_beta >= 1)) throw KvError("pyramidkv beta must be >= 1");
    state.calls++;
    const int64_t L = in.seq_len, cap = BudgetCap(budget, L);
    if (L < cap) return NoCompression(in, cap, out, tel);
    const int64_t W = ClampWindow(p.window, cap, false, L), P = L - W;
    const int64_t B = cap - W;
    const int64_t beta = static_cast<int64_t>(p.pyramid_beta);
    int64_t min_num = FloorDiv(B, beta);
    int64_t max_num = B * 2 - min_num;
    if (max_num >= L - W) {
      max_num = L - W;
      min_num = B * 2 - max_num;
    }
    const int64_t steps = FloorDiv(max_num - min_num, p.num_layers - 1);
    int64_t k;
    if (L < B * 2) {
      k = B;
      tel.branch = "uniform_snapkv";
    } else {
      k = max_num - p.layer_idx * steps;
      tel.branch = "pyramid";
    }
    k = std::max<int64_t>(0, std::min(k, P));
    ValidateLayer(in, W);
    std::vector<float> scores;
    SnapKvScores(in, W, p, scores, &tel);
    const int rows = ReduceForGranularity(scores, in.num_heads, in.num_kv_heads, P, p.granularity);
    out = Compressed(p.granularity, cap, W, P);
    SelectPerRow(scores, rows, P, k, out);
    tel.layer_budget = k + W;
  }
};

}  // namespace

const KvMethod& PyramidKvMethod() {
  static const PyramidKv m;
  return m;
}

}  // namespace starkv::kv
