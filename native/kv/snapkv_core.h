// The SnapKV core shared by every attention-scored method: input validation, budget/window
// arithmetic, observation-window attention column sums, 1-D pooling, the spatial saliency boost,
// group reductions and deterministic top-K.
#pragma once

#include <cstdint>
#include <vector>

#include "kv/kv_types.h"

namespace starkv::kv {

// Checks shapes, pointers and spans; `need_q_rows` = how many trailing query rows the method reads.
void ValidateLayer(const LayerInputs& in, int64_t need_q_rows);
// The host keys, for code that reads them directly (throws KvError naming `who` when there are only
// device-side hooks, i.e. a method read keys other than through the hooks).
const float* HostKeys(const LayerInputs& in, const char* who);
// cap = int(ref_len * (percent / 100)) in double precision, or the absolute cap.
int64_t BudgetCap(const Budget& b, int64_t seq_len);
// GUI-KV repo wrappers: min(w, cap - 2); STaR-KV wrapper: max(1, min(w, cap - 2)).
// Ours additionally never returns < 1 (the reference raises there) nor > L - 1.
int64_t ClampWindow(int64_t w_cfg, int64_t cap, bool min1, int64_t seq_len);

// sums[h * P + t] = sum over the last W query rows of softmax_fp32(q k^T / sqrt(d)) at past slot
// t < P = L - W (window keys causally masked). Query head h reads KV head h / (H / Hkv).
void WindowAttentionSums(const LayerInputs& in, int64_t W, std::vector<float>& sums);
// H2O's accumulated attention: sums[h * L + t] for every slot t < L, the sum over all q_rows query rows
// of the same causal softmax, each row adding the keys it sees (the window sums' arithmetic: for t < P
// the two agree). Through the accumulated_sums hook when it is set.
void AccumulatedAttentionSums(const LayerInputs& in, std::vector<float>& sums);
// Per row pooling of rows x P scores (count_include_pad avg, or max).
void PoolRows(const std::vector<float>& x, int rows, int64_t P, int kernel, Pooling pooling,
              std::vector<float>& out);
// SnapKV core = sums + pooling; optionally records both in telemetry (debug).
void SnapKvScores(const LayerInputs& in, int64_t W, const MethodParams& p, std::vector<float>& pooled,
                  Telemetry* tel);

// alpha * softmax(((||x_i|| - mean) / (std_unbiased + 1e-8)) / T) over the span's hidden rows.
std::vector<float> SaliencyBoost(const LayerInputs& in, Span span, double alpha, double temperature);

// Mean over the G query heads of each KV group: out[g * P + t].
void GroupMean(const std::vector<float>& per_head, int H, int Hkv, int64_t P, std::vector<float>& out);

// Indices of the k best scores (higher first, then lower index), in that order.
std::vector<int64_t> TopK(const float* scores, int64_t n, int64_t k);
std::vector<int64_t> Sorted(std::vector<int64_t> v);
// Fills out.kept / out.gather_order from per-row scores (rows x P) with k per row.
void SelectPerRow(const std::vector<float>& scores, int rows, int64_t P, int64_t k, Selection& out);
// A fresh Selection that evicts: cap (window included), protected window W, candidates [0, P).
Selection Compressed(Granularity g, int64_t cap, int64_t W, int64_t P);

// Clips spans to [0, limit] and drops empty ones (STaR-KV convention).
std::vector<Span> ClipSpans(const std::vector<Span>& spans, int64_t limit);

}  // namespace starkv::kv

namespace starkv::kv {
// Reduces per-query-head scores (H x P) in place to the rows of the requested granularity
// (QueryHead: unchanged; KvHead: group mean; Shared: mean over all heads). Returns the row count.
int ReduceForGranularity(std::vector<float>& scores, int H, int Hkv, int64_t P, Granularity g);
// Marks a selection as "no compression: every slot stays".
void NoCompression(const LayerInputs& in, int64_t cap, Selection& out, Telemetry& tel);
}  // namespace starkv::kv
