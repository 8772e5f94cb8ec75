// Plain data exchanged with the KV compression methods: layer inputs (borrowed views), budget,
// hyperparameters, per-layer episode state, selection and telemetry. No N-API, no JSON.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace starkv::kv {

// Every invalid input or impossible configuration is reported with this exception (never abort).
struct KvError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Span {  // [start, end) in slot indices
  int64_t start = 0;
  int64_t end = 0;
};

struct GridHW {  // true image grid (merged tokens) of a span; 0 = unknown
  int64_t rows = 0;
  int64_t cols = 0;
};

// One layer's inputs, all memory borrowed from the caller. A layer holds `seq_len` live slots in
// position order (slot = row of the KV store; for a one-shot prefill, slot == token position).
struct LayerInputs {
  int num_heads = 0;     // H query heads
  int num_kv_heads = 0;  // Hkv; query head h reads KV head h / (H / Hkv)
  int head_dim = 0;      // d
  int64_t seq_len = 0;   // L live slots
  // Post-RoPE keys [num_kv_heads][kv_capacity][head_dim]; slot s of KV head g at keys[(g*kv_capacity+s)*d].
  const float* keys = nullptr;
  int64_t kv_capacity = 0;
  // Queries of the last q_rows slots: [num_heads][q_rows][head_dim] (row r = slot L - q_rows + r).
  const float* queries = nullptr;
  int64_t q_rows = 0;
  // Attention-layer inputs (post input_layernorm) of slots [hidden_row0, hidden_row0 + hidden_rows):
  // [hidden_rows][hidden_size]. Only the current frame's rows are read (saliency norms). Optional.
  const float* hidden = nullptr;
  int64_t hidden_row0 = 0;
  int64_t hidden_rows = 0;
  int hidden_size = 0;
  std::vector<Span> spans;         // vision spans, oldest first; the last one is the current frame
  std::vector<GridHW> span_grids;  // optional, one per span (MI true-grid option)
  // Optional [seq_len] source token index of each slot (H2O carry-over across calls).
  const int64_t* slot_positions = nullptr;
  // VL-Cache: first slot after the last image (<|vision_end|> index). -1 = spans.back().end.
  int64_t last_vision_index = -1;
  // Optional: computes WindowAttentionSums(in, W) where the keys live (a KV store in device memory):
  // fills sums [num_heads][seq_len - W]. When set (with the three hooks below), `keys` may be null:
  // the methods read keys only through the hooks (episode_kv_test holds every method to that).
  std::function<void(int64_t W, std::vector<float>& sums)> window_sums;
  // Optional, likewise: VlCacheZeroCounts(in, rows, threshold, zeros) where the keys live (VL-Cache's
  // sparsity pre-pass, also STaR-KV's vlcache_layer_budgets option).
  std::function<void(int64_t rows, float threshold, std::vector<int64_t>& zeros)> zero_counts;
  // Optional, likewise: GuiKvResiduals(in, cur_start, rank, positions, res) where the keys live (GUI-KV's
  // temporal redundancy).
  std::function<void(int64_t cur_start, int rank, const std::vector<int64_t>& positions, std::vector<float>& res)>
      key_residuals;
  // Optional, likewise: AccumulatedAttentionSums over the last `rows` query rows where the keys live (H2O):
  // fills sums [num_heads][seq_len]. With all four hooks, no method reads `keys`.
  std::function<void(int64_t rows, std::vector<float>& sums)> accumulated_sums;
};

// Budget semantics (papers): cap = int(ref_len * (percent / 100)) tokens per layer, window included.
struct Budget {
  double percent = 100.0;
  int64_t ref_len = -1;     // length the percent applies to; -1 = seq_len
  int64_t cap_tokens = -1;  // absolute cap per layer (window included); overrides percent when >= 0
};

enum class Pooling { Avg, Max };
// Shared: one list for all heads; QueryHead: H lists; KvHead: Hkv lists (native GQA layout).
enum class Granularity { Shared, QueryHead, KvHead };

// Hyperparameters of every method (each method reads its own fields; defaults per method come
// from the registry). Names for SetParam are listed in params.cpp.
struct MethodParams {
  // SnapKV core (observation window, pooling)
  int window = 8;
  int kernel = 5;
  Pooling pooling = Pooling::Avg;
  bool window_min1 = false;  // STaR-KV wrapper clamps the window to >= 1
  Granularity granularity = Granularity::QueryHead;
  // spatial saliency boost (GUI-KV, STaR-KV)
  double alpha = 2.0;
  double saliency_temperature = 3.5;
  // PyramidKV
  double pyramid_beta = 20;
  int num_layers = 28;
  int layer_idx = 0;
  // GUI-KV temporal QR
  int qr_rank = 32;
  // VL-Cache
  double sparsity_threshold = 0.01;
  double beta_min = 0.001;
  double beta_max = 1.0;
  int64_t layer_budget = -1;  // per-layer budget from the allocator (required by vlcache)
  // STaR-KV: MI prior
  double lambda = 0.5;
  int profile_steps = 5;
  double mi_decay = 0.9;
  double mi_tau = 1.0;
  int lambda_ramp_steps = 10;
  int mi_value_bins = 16;
  int mi_row_bins = 12;
  int mi_col_bins = 12;
  // STaR-KV: temporal stability discount
  bool temporal = true;
  double temporal_delta = 0.1;
  double temporal_rho = 0.9;
  double temporal_eps = 0.0;
  double temporal_discount_min = 0.0;
  int temporal_warmup = 0;
  // STaR-KV: AEB temperature
  bool aeb = true;
  double aeb_min = 0.75;
  double aeb_max = 1.25;
  double aeb_smooth = 0.0;
  // Options beyond the reference (off by default)
  bool mi_true_grid = false;            // MI over the span's true image grid (span_grids)
  bool per_query_head = false;          // STaR-KV: select per query head instead of one shared set
  bool vlcache_layer_budgets = false;   // STaR-KV: VL-Cache sparsity-based per-layer budgets
  // AdaKV
  double floor_alpha = 0.5;
  // H2O: fraction of cap given to the recent window (rest = heavy hitters)
  double h2o_recent_fraction = 0.5;
  // Record float intermediates in Telemetry::arrays
  bool debug = false;
};

// Per-layer method state, owned by the caller: one per layer per episode; Reset() between episodes.
struct LayerState {
  int64_t temporal_step = 0;        // STaR-KV temporal counter (incremented on every call)
  int64_t profile_step = 0;         // STaR-KV MI counter (incremented on compressing calls)
  std::vector<float> mi_ema;        // [Hkv], empty = none yet
  std::vector<float> pattern_ema;   // [pattern_groups][pattern_len], empty = none yet
  int64_t pattern_groups = 0;
  int64_t pattern_len = 0;
  bool has_temperature = false;     // AEB temperature of the previous call (EMA when smooth > 0)
  double temperature = 0;
  std::vector<int64_t> h2o_positions;  // H2O: source positions with accumulated attention
  std::vector<float> h2o_acc;          // [Hkv][h2o_positions.size()]
  int64_t calls = 0;
  void Reset() { *this = LayerState(); }
};

struct Selection {
  bool compressed = false;  // false: nothing evicted (L < cap, or method "full")
  Granularity granularity = Granularity::Shared;
  int64_t cap = 0;          // cap from the budget (window included)
  int64_t window = 0;       // protected tail: slots [past_len, seq_len)
  int64_t past_len = 0;     // candidates for eviction: slots [0, past_len)
  int64_t k_keep = 0;       // past slots kept per list (max over lists for ragged methods)
  std::vector<std::vector<int64_t>> kept;          // ascending slot indices < past_len
  std::vector<std::vector<int64_t>> gather_order;  // same, descending score (reference gather order)
};

struct DebugArray {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> data;
};

struct Telemetry {
  static constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  double temperature = kNaN;
  double entropy = kNaN;
  double max_entropy = kNaN;
  double normalized_entropy = kNaN;
  double lambda_eff = kNaN;
  std::vector<float> mi_cur, mi_ema, group_weights, stability;
  int64_t temporal_step = 0;
  int64_t profile_step = 0;
  int64_t layer_budget = -1;
  std::string branch;              // which code path ran (PyramidKV, VL-Cache, no_compression, ...)
  std::vector<DebugArray> arrays;  // filled when params.debug
  void Add(std::string name, std::vector<int64_t> shape, std::vector<float> data) {
    arrays.push_back({std::move(name), std::move(shape), std::move(data)});
  }
};

}  // namespace starkv::kv
