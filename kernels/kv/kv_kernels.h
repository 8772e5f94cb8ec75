// KV-compression kernels (spec kv-compression.md section 7.2) as host-callable functions on device
// pointers. No CUDA types here: plain C++ can include this header; a cudaStream_t is passed as
// void* (nullptr = the legacy default stream). Every function enqueues work on `stream` and returns
// without synchronising unless it says otherwise; launch and argument errors throw CudaKvError.
//
// Layouts follow the CPU code (native/kv/kv_types.h): keys [num_kv_heads][kv_capacity][head_dim],
// window queries [num_heads][q_rows][head_dim] (row r = slot seq_len - q_rows + r), per-head scores
// [rows][P] row-major. Query head h reads KV head h / (num_heads / num_kv_heads).
// The per-element arithmetic of every kernel is the STARKV_HD code of native/kv/kernels.h, the same
// functions the CPU methods call. Compiled only (no GPU was available when this was written).
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace starkv::cuda::kv {

struct CudaKvError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// ---- Runtime helpers (device discovery and plain memory moves, for tests and the wiring) ----

// Number of usable CUDA devices; 0 with `reason` set ("no CUDA driver", cudaGetDeviceCount's message).
int DeviceCount(std::string* reason);
std::string DeviceName(int device);
void* DeviceAlloc(size_t bytes);  // throws CudaKvError naming the size when it does not fit
void DeviceFree(void* p);
void CopyToDevice(void* dst, const void* src, size_t bytes);  // synchronous
void CopyToHost(void* dst, const void* src, size_t bytes);    // synchronous
void DeviceMemset(void* dst, int value, size_t bytes);         // synchronous
void Synchronize(void* stream);                                // waits and reports asynchronous errors

// ---- 1. Observation-window attention without materialising [rows, L] ----

struct WindowArgs {
  const float* queries = nullptr;  // [num_heads][q_rows][head_dim]
  int64_t q_rows = 0;
  const float* keys = nullptr;  // [num_kv_heads][kv_capacity][head_dim]
  int64_t kv_capacity = 0;
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int64_t seq_len = 0;  // L
  int64_t rows = 0;     // W: the query rows are slots [L - W, L); row i sees keys j <= L - W + i
};
// Scratch (device bytes) for WindowColsum / AccumulatedColsum / WindowZeroCounts.
size_t WindowScratchBytes(const WindowArgs& a);
// sums[h][t], t < P = L - W: sum over the W rows of softmax_fp32(<q,k>/sqrt(d)) (CPU: WindowAttentionSums).
// Two passes over key tiles held in shared memory: per-tile row max / exp-sum merged online, then
// probabilities accumulated per column (double, rows in order).
void WindowColsum(const WindowArgs& a, float* sums, void* scratch, void* stream);
// H2O's accumulated attention: sums[h][t] for every slot t < L, each of the W rows adding the keys it
// sees (causal: row i sees t <= L - W + i); the same two passes and arithmetic as WindowColsum, whose
// values for t < P it repeats (CPU: AccumulatedAttentionSums). Scratch: WindowScratchBytes.
void AccumulatedColsum(const WindowArgs& a, float* sums, void* scratch, void* stream);
// VL-Cache sparsity rows (eager logits <q,k>*d^-0.5): zeros[h][i] = number of causally visible keys
// of row i whose probability is not > threshold (CPU: VlCacheSparsity counts valid - above).
// The layer's gamma from a host copy of the counts: kv::VlCacheGammaFromZeros (native/kv/methods.h).
void WindowZeroCounts(const WindowArgs& a, float threshold, int64_t* zeros, void* scratch, void* stream);

// ---- 2. Pooling and group reductions ----

// out[r][t] = AvgPoolAt / MaxPoolAt(x[r], n, t, kernel) (count_include_pad avg or max, stride 1, pad k/2).
void Pool1d(const float* x, int rows, int64_t n, int kernel, bool max_pool, float* out, void* stream);
// out[g][t] = mean (GroupMeanAt) or max (GroupMaxAt) over the rows/groups consecutive rows of x[rows][n].
void GroupReduce(const float* x, int rows, int groups, int64_t n, bool max_reduce, float* out, void* stream);
// out[t] = argmax_g S[g][t] (ties -> lowest g).
void ArgmaxOverGroups(const float* S, int groups, int64_t n, int* out, void* stream);

// ---- 3. Spatial saliency ----

// r[i] = ||hidden[i]|| (sum of squares in double) over n rows of `hidden_size` floats, row stride `ld`
// (the backend's RowNorms on a device; CPU: k::SumSquares / k::NormFromSumSquares per row).
void RowNorms(const float* hidden, int64_t n, int hidden_size, int64_t ld, float* r, void* stream);
size_t SaliencyScratchBytes(int64_t n);
// boost[i] = alpha * softmax_i(((r_i - mean) / (std + 1e-8)) / T), r_i = ||hidden[i]|| over n rows
// of `hidden_size` floats with row stride `ld` (CPU: SaliencyBoost).
void SaliencyBoost(const float* hidden, int64_t n, int hidden_size, int64_t ld, double alpha, double temperature,
                   float* boost, void* scratch, void* stream);
// scores[r][start + i] += boost[i] for every row r and start + i < P.
void AddSpanBoost(float* scores, int rows, int64_t P, int64_t start, const float* boost, int64_t n, void* stream);

// ---- 4. STaR-KV spatial mutual information ----

size_t SpanHistMiScratchBytes(int groups, int64_t n);
// mi[g] (device doubles) = strict_mi_score_2d of S[g][start .. start+n) (row stride ld) on a gh x gw
// raster with value_bins x (row_bins x col_bins) histogram cells (CPU: SpatialMi). Ranks are exact
// stable ascending ranks; histogram in shared memory; MI summed in double.
void SpanHistMi(const float* S, int64_t ld, int groups, int64_t start, int64_t n, int64_t gh, int64_t gw,
                int value_bins, int row_bins, int col_bins, double* mi, void* scratch, void* stream);

// ---- 5. GUI-KV residuals, STaR-KV temporal EMA, frame ages, fused score ----

size_t LowRankScratchBytes(int num_kv_heads, int rank, int head_dim);
// res[g][i] = || k_{positions[i]} - Q_r Q_r^T k || for KV head g, Q_r = Gram-Schmidt basis of the keys
// of slots [cur_start, cur_start + rank) (CPU: guikv.cpp OrthoBasis + ResidualNorm). head_dim <= 256.
void LowRankResidual(const float* keys, int64_t kv_capacity, int num_kv_heads, int head_dim, int64_t cur_start,
                     int rank, const int64_t* positions, int64_t n_prev, float* res, void* scratch, void* stream);
// scores[g*G + j][positions[sel[g][s]]] = 0 for s < nz, every query head j of group g, position < P.
void ZeroSelected(float* scores, int num_heads, int num_kv_heads, int64_t P, const int64_t* positions,
                  const int64_t* sel, int64_t sel_ld, int64_t nz, void* stream);
// age[t] = FrameAge(i, nf) for t inside span i (last span wins), 0 elsewhere; starts/ends on device.
void FrameAges(const int64_t* span_starts, const int64_t* span_ends, int nf, int64_t P, float* age, void* stream);
// Temporal EMA of the group patterns over the current frame (CPU: starkv_temporal.cpp):
// a = clamp(S[g][start..start+n), 0) / max(sum, 1e-8); ema = has_prev ? rho*ema + (1-rho)*a : a;
// stab[g] = clamp(cos(a, ema), 0, 1).  ema: [groups][n] in/out.
void TemporalEma(const float* S, int64_t ld, int groups, int64_t start, int64_t n, float* ema, bool has_prev,
                 float rho, float* stab, void* stream);
struct FuseArgs {
  const float* base = nullptr;  // [rows][P]
  int rows = 1;
  int64_t P = 0;
  const int* gstar = nullptr;   // [P] argmax group per slot
  const float* w_g = nullptr;   // [num_kv_heads] MI group weights
  int num_kv_heads = 0;
  float lambda = 0;             // effective lambda
  bool apply_discount = false;  // temporal discount active (after warm-up, >= 2 spans)
  const float* age = nullptr;   // [P] frame ages (needed when apply_discount)
  const float* stab = nullptr;  // [num_kv_heads] stabilities (needed when apply_discount)
  float delta = 0.1f, eps = 0.0f, dmin = 0.0f;
  bool sharpen = false;         // AEB: max(x, 0)^(1/T)
  float inv_t = 1.0f;
};
// out[r][t] = FuseScore(base[r][t], w_g[g*], ..., TemporalDiscount(age[t], stab[g*]), inv_t).
void ElementwiseFuse(const FuseArgs& a, float* out, void* stream);

// ---- 6. Selection ----

// Per row r of scores[rows][ld] (first n entries): the k_r best (k_per_row[r] on device, or `k` when
// null) under k::Better (higher, then lower index; NaN lowest), or with bottom = true the best of
// -score (the CPU's TopK on negated scores). Writes ascending indices to out[r * out_ld + ...].
// Radix select on 64-bit RankKey (distinct keys, so exactly k_r indices). n < 2^32.
void TopKRows(const float* scores, int rows, int64_t n, int64_t ld, const int64_t* k_per_row, int64_t k, bool bottom,
              int64_t* out, int64_t out_ld, void* stream);
// AdaKV: k_out[r] = AdaKvHeadBudget(#{f in flat_top : f / P == r}, alpha, floor_cap, P), r < rows.
void AdaKvHeadBudgets(const int64_t* flat_top, int64_t count, int64_t P, int rows, double alpha, int64_t floor_cap,
                      int64_t* k_out, void* stream);

// ---- 7. Compaction ----

size_t CompactScratchBytes(int num_kv_heads, int64_t new_len, int head_dim);
// Keeps, per KV head, the kept past slots kept[list][0..n_keep) (ascending, < past_len; list = 0 when
// lists == 1, else the head) followed by the window [past_len, past_len + window), order preserved,
// in keys / values (either may be null) and slot_positions (optional; uses list 0). With scratch
// (CompactScratchBytes) every row moves in parallel through it; without, each (head, tensor) is
// compacted in place by one block in ascending chunks. Returns the new length n_keep + window.
int64_t CompactKv(float* keys, float* values, int num_kv_heads, int64_t capacity, int head_dim, const int64_t* kept,
                  int lists, int64_t n_keep, int64_t past_len, int64_t window, int64_t* slot_positions, void* scratch,
                  void* stream);

}  // namespace starkv::cuda::kv
