// SnapKV as re-implemented in the GUI-KV repo (SnapKVCluster): window w=8, avgpool k=5, per query
// head top-(cap - w). Option: granularity kv_head / shared (group / all-head mean of the scores).
#include "kv/methods.h"
#include "kv/snapkv_core.h"

namespace starkv::kv {
namespace {

class SnapKv final : public KvMethod {
 public:
  const char* Name() const override { return "snapkv"; }
  MethodParams Defaults() const override {
    MethodParams p;
    p.window = 8;
    p.kernel = 5;
    p.pooling = Pooling::Avg;
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
    std::vector<float> scores;
    SnapKvScores(in, W, p, scores, &tel);
    const int rows = ReduceForGranularity(scores, in.num_heads, in.num_kv_heads, P, p.granularity);
    out = Compressed(p.granularity, cap, W, P);
    SelectPerRow(scores, rows, P, cap - W, out);
    tel.branch = "snapkv";
  }
};

}  // namespace

const KvMethod& SnapKvMethod() {
  static const SnapKv m;
  return m;
}

}  // namespace starkv::kv
