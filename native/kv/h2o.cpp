// H2O (FMInference/H2O, heavy hitters + recent window): a slot's score is the attention it has
// accumulated from every query that could see it (the available query rows, causally), plus what it
// accumulated in earlier calls of this episode (carried by source position when slot_positions are
// given). Keeps the recent window (h2o_recent_fraction of cap; reference 10 % + 10 %) and the top
// heavy hitters of the rest, per KV head (GQA mean) by default.
#include <algorithm>

#include "kv/methods.h"
#include "kv/snapkv_core.h"

namespace starkv::kv {
namespace {

class H2o final : public KvMethod {
 public:
  const char* Name() const override { return "h2o"; }
  MethodParams Defaults() const override {
    MethodParams p;
    p.h2o_recent_fraction = 0.5;
    p.granularity = Granularity::KvHead;
    return p;
  }
  void Compress(const LayerInputs& in, const Budget& budget, const MethodParams& p, LayerState& st,
                Selection& out, Telemetry& tel) const override {
    ValidateLayer(in, 1);
    if (!(p.h2o_recent_fraction > 0 && p.h2o_recent_fraction < 1)) throw KvError("h2o_recent_fraction must be in (0, 1)");
    st.calls++;
    const int64_t L = in.seq_len, cap = BudgetCap(budget, L);
    const int H = in.num_heads, Hkv = in.num_kv_heads;
    // accumulated attention of every slot, per query head (where the keys live when the hook is set)
    std::vector<float> acc;
    AccumulatedAttentionSums(in, acc);
    const int rows = ReduceForGranularity(acc, H, Hkv, L, p.granularity);
    // carry-over from earlier calls, matched by source position
    if (in.slot_positions && !st.h2o_positions.empty() &&
        st.h2o_acc.size() == static_cast<size_t>(rows) * st.h2o_positions.size()) {
      const int64_t n_prev = static_cast<int64_t>(st.h2o_positions.size());
      for (int64_t s = 0; s < L; ++s) {
        const auto it = std::lower_bound(st.h2o_positions.begin(), st.h2o_positions.end(), in.slot_positions[s]);
        if (it == st.h2o_positions.end() || *it != in.slot_positions[s]) continue;
        const int64_t j = it - st.h2o_positions.begin();
        for (int r = 0; r < rows; ++r) acc[static_cast<int64_t>(r) * L + s] += st.h2o_acc[static_cast<int64_t>(r) * n_prev + j];
      }
    }
    if (p.debug) tel.Add("accumulated_attention", {rows, L}, acc);
    if (L < cap) {
      NoCompression(in, cap, out, tel);
      Remember(in, acc, rows, L, nullptr, 0, st);
      return;
    }
    const int64_t W = std::max<int64_t>(1, std::min<int64_t>(L - 1, static_cast<int64_t>(cap * p.h2o_recent_fraction)));
    const int64_t P = L - W, heavy = std::max<int64_t>(0, std::min(cap - W, P));
    std::vector<float> past(static_cast<size_t>(rows) * P);
    for (int r = 0; r < rows; ++r)
      std::copy_n(acc.begin() + static_cast<int64_t>(r) * L, P, past.begin() + static_cast<int64_t>(r) * P);
    out = Compressed(p.granularity, cap, W, P);
    SelectPerRow(past, rows, P, heavy, out);
    Remember(in, acc, rows, L, &out, W, st);
    tel.branch = "h2o";
  }

 private:
  // Stores the accumulated scores of the slots that stay (by source position) for the next call.
  // With per-row selections, a slot kept by any row is remembered for all rows.
  static void Remember(const LayerInputs& in, const std::vector<float>& acc, int rows, int64_t L,
                       const Selection* sel, int64_t W, LayerState& st) {
    st.h2o_positions.clear();
    st.h2o_acc.clear();
    if (!in.slot_positions) return;
    std::vector<char> keep(L, sel ? 0 : 1);
    if (sel) {
      for (const auto& list : sel->kept)
        for (int64_t s : list) keep[s] = 1;
      for (int64_t s = L - W; s < L; ++s) keep[s] = 1;
    }
    std::vector<int64_t> slots;
    for (int64_t s = 0; s < L; ++s)
      if (keep[s]) slots.push_back(s);
    std::sort(slots.begin(), slots.end(), [&](int64_t a, int64_t b) { return in.slot_positions[a] < in.slot_positions[b]; });
    for (int64_t s : slots) st.h2o_positions.push_back(in.slot_positions[s]);
    st.h2o_acc.resize(static_cast<size_t>(rows) * slots.size());
    for (int r = 0; r < rows; ++r)
      for (size_t j = 0; j < slots.size(); ++j)
        st.h2o_acc[r * slots.size() + j] = acc[static_cast<int64_t>(r) * L + slots[j]];
  }
};

}  // namespace

const KvMethod& H2oMethod() {
  static const H2o m;
  return m;
}

}  // namespace starkv::kv
