// Per-element math of the compression methods, as small inline functions that a CUDA backend can
// reuse unchanged (STARKV_HD = __host__ __device__ there). fp32 storage, fp64 inside reductions.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kv/hd.h"

namespace starkv::kv::k {

// <a, b> over d elements, accumulated in double, rounded to float (torch's fp32 matmul result).
STARKV_HD inline float Dot(const float* a, const float* b, int d) {
  double s = 0.0;
  for (int i = 0; i < d; ++i) s += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  return static_cast<float>(s);
}

// Window row i (0-based inside a window of W rows ending at slot L-1) sees key slot j iff
// j < L - W + i + 1 (past keys always; window keys causally).
STARKV_HD inline bool WindowVisible(int64_t j, int64_t i, int64_t L, int64_t W) { return j <= L - W + i; }

// exp(x - m) of a softmax row, evaluated in double and rounded to float.
STARKV_HD inline float ExpShift(float x, float m) {
  return static_cast<float>(std::exp(static_cast<double>(x) - static_cast<double>(m)));
}

// avg_pool1d(kernel k, stride 1, padding k/2, count_include_pad=True) at position t of x[0..n).
STARKV_HD inline float AvgPoolAt(const float* x, int64_t n, int64_t t, int k) {
  const int64_t half = k / 2;
  double s = 0.0;
  for (int64_t j = t - half; j <= t - half + k - 1; ++j)
    if (j >= 0 && j < n) s += x[j];
  return static_cast<float>(s / k);
}

// max_pool1d(kernel k, stride 1, padding k/2) at t (implicit padding = -inf).
STARKV_HD inline float MaxPoolAt(const float* x, int64_t n, int64_t t, int k) {
  const int64_t half = k / 2;
  float m = -INFINITY;
  for (int64_t j = t - half; j <= t - half + k - 1; ++j)
    if (j >= 0 && j < n && x[j] > m) m = x[j];
  return m;
}

// Ranking order: higher score first, then lower index. NaN ranks below everything.
STARKV_HD inline bool Better(float a, int64_t ia, float b, int64_t ib) {
  const bool an = a != a, bn = b != b;
  if (an != bn) return bn;
  if (!an && a != b) return a > b;
  return ia < ib;
}

// STaR-KV MI pseudo/true grid: spatial bin (row-major rb * col_bins + cb) of token `off`.
STARKV_HD inline int64_t SpatialBin(int64_t off, int64_t gh, int64_t gw, int row_bins, int col_bins) {
  const int64_t row = off / gw, col = off % gw;
  const double y = (row + 0.5) / static_cast<double>(gh > 1 ? gh : 1);
  const double x = (col + 0.5) / static_cast<double>(gw > 1 ? gw : 1);
  int64_t rb = static_cast<int64_t>(std::floor(y * row_bins));
  int64_t cb = static_cast<int64_t>(std::floor(x * col_bins));
  rb = rb < 0 ? 0 : (rb > row_bins - 1 ? row_bins - 1 : rb);
  cb = cb < 0 ? 0 : (cb > col_bins - 1 ? col_bins - 1 : cb);
  return rb * col_bins + cb;
}

// Equal-frequency value bin of a rank among n.
STARKV_HD inline int64_t ValueBin(int64_t rank, int64_t n, int bins) {
  int64_t a = static_cast<int64_t>(std::floor(static_cast<double>(rank) * (bins > 1 ? bins : 1) / static_cast<double>(n)));
  return a < 0 ? 0 : (a > bins - 1 ? bins - 1 : a);
}

// MI prior: x * ((1 - lambda) + lambda * w_star), w_star = w[g*] * Hkv.
STARKV_HD inline float MiPrior(float base, float w_g, int n_kv, float lambda) {
  const float w_star = w_g * static_cast<float>(n_kv);
  return base * ((1.0f - lambda) + lambda * w_star);
}

// Temporal discount D = dmin + (1 - dmin) * exp(-delta * dist * phi), phi = eps + (1 - eps) * stab.
STARKV_HD inline float TemporalDiscount(float dist, float stab, float delta, float eps, float dmin) {
  const float phi = eps + (1.0f - eps) * stab;
  const float raw = std::exp((-delta * dist) * phi);
  return dmin + (1.0f - dmin) * raw;
}

// AEB sharpening: max(x, 0) ^ (1 / T).
STARKV_HD inline float AebSharpen(float x, float inv_t) { return std::pow(x > 0.0f ? x : 0.0f, inv_t); }

// Softmax temperature from a normalized entropy.
STARKV_HD inline double AebTemperature(double ne, double t_min, double t_max) { return t_min + (t_max - t_min) * ne; }

// ---- Observation-window attention (SnapKV core, VL-Cache sparsity) ----

// sqrt(d) as the SnapKV core divides by it (fp32 value of the double square root).
STARKV_HD inline float SqrtHeadDim(int d) { return static_cast<float>(std::sqrt(static_cast<double>(d))); }
// d^-0.5 as eager attention multiplies by it (VL-Cache sparsity pre-pass).
STARKV_HD inline float InvSqrtHeadDim(int d) { return static_cast<float>(1.0 / std::sqrt(static_cast<double>(d))); }
// Window logit of the SnapKV core: <q, k> / sqrt(d).
STARKV_HD inline float WindowLogit(const float* q, const float* k, int d, float sqrt_d) { return Dot(q, k, d) / sqrt_d; }
// Eager-attention logit: <q, k> * d^-0.5.
STARKV_HD inline float EagerLogit(const float* q, const float* k, int d, float inv_sqrt_d) {
  return Dot(q, k, d) * inv_sqrt_d;
}
// Probability of one key: exp(x - m) (ExpShift, already evaluated) over the fp32 row sum.
STARKV_HD inline float SoftmaxProb(float e, float z) { return e / z; }
// VL-Cache: a probability counts as attended (non-zero after thresholding) iff it is > threshold.
STARKV_HD inline bool AboveThreshold(float prob, float thr) { return prob > thr; }
// VL-Cache per-head sparsity: 1 - fp32 mean of the above-threshold mask over `valid` weights.
STARKV_HD inline double SparsityFromCounts(int64_t above, int64_t valid) {
  const float mean = static_cast<float>(above) / static_cast<float>(valid);
  return 1.0 - static_cast<double>(mean);
}

// ---- Group reductions over the query heads of a GQA group (or all heads) ----

// Mean of n values x[0], x[stride], ... accumulated in double, rounded to float.
STARKV_HD inline float GroupMeanAt(const float* x, int64_t stride, int n) {
  double s = 0.0;
  for (int j = 0; j < n; ++j) s += x[static_cast<int64_t>(j) * stride];
  return static_cast<float>(s / n);
}
// Max of n values x[0], x[stride], ... (a NaN propagates, as torch.max).
STARKV_HD inline float GroupMaxAt(const float* x, int64_t stride, int n) {
  float m = x[0];
  for (int j = 1; j < n && m == m; ++j) {
    const float v = x[static_cast<int64_t>(j) * stride];
    if (v != v || v > m) m = v;
  }
  return m;
}
// argmax over n groups of x[g * stride]; ties -> lowest g (torch.argmax).
STARKV_HD inline int ArgmaxGroupAt(const float* x, int64_t stride, int n) {
  int best = 0;
  for (int g = 1; g < n; ++g)
    if (x[static_cast<int64_t>(g) * stride] > x[static_cast<int64_t>(best) * stride]) best = g;
  return best;
}

// ---- Spatial saliency (GUI-KV / STaR-KV) ----

// Sum of squares of x[begin], x[begin + step], ... below end, accumulated in double.
STARKV_HD inline double SumSquares(const float* x, int64_t begin, int64_t end, int64_t step) {
  double s = 0.0;
  for (int64_t c = begin; c < end; c += step) s += static_cast<double>(x[c]) * x[c];
  return s;
}
// L2 norm from a double sum of squares, rounded to float.
STARKV_HD inline float NormFromSumSquares(double s) { return static_cast<float>(std::sqrt(s)); }
// Unbiased (n - 1) standard deviation from a sum of squared deviations; 0 for n <= 1.
STARKV_HD inline double UnbiasedStd(double sq_dev, int64_t n) {
  return n > 1 ? std::sqrt(sq_dev / static_cast<double>(n - 1)) : 0.0;
}
// Saliency logit z_i / T with z_i = (r - mean) / (std + 1e-8) in fp32, as the reference computes it.
STARKV_HD inline double SaliencyLogit(float r, double mean, double sd, double temperature) {
  const float zi = static_cast<float>((r - static_cast<float>(mean)) / (static_cast<float>(sd) + 1e-8f));
  return static_cast<double>(static_cast<float>(zi / temperature));
}
// exp(z - zmax) of the saliency softmax (double).
STARKV_HD inline double SaliencyExp(double z, double zmax) { return std::exp(z - zmax); }
// alpha * softmax weight: alpha * fp32(e / total).
STARKV_HD inline float SaliencyWeight(double e, double total, double alpha) {
  return static_cast<float>(static_cast<float>(e / total) * alpha);
}

// ---- STaR-KV spatial MI, temporal EMA ----

// std::max(x, 0.0f): NaN and -0 pass through unchanged.
STARKV_HD inline float ClampNonNeg(float x) { return x < 0.0f ? 0.0f : x; }
// Ascending order of the MI ranks: smaller value first, ties by lower position (stable sort).
STARKV_HD inline bool AscendingBefore(float a, int64_t ia, float b, int64_t ib) {
  if (a < b) return true;
  if (b < a) return false;
  return ia < ib;
}
// One cell of the plug-in MI sum: J * (log(J + 1e-12) - log(pA * pY + 1e-12)); 0 for an empty cell.
STARKV_HD inline double MiTerm(double j, double pa, double py) {
  return j > 0 ? j * (std::log(j + 1e-12) - std::log(pa * py + 1e-12)) : 0.0;
}
// Pattern value of a group over the current frame: clamp(s, 0) / den.
STARKV_HD inline float PatternValue(float s, float den) { return ClampNonNeg(s) / den; }
// Denominator of the pattern: max(fp32(sum of clamped scores), 1e-8).
STARKV_HD inline float PatternDenominator(double clamped_sum) {
  const float s = static_cast<float>(clamped_sum);
  return s < 1e-8f ? 1e-8f : s;  // std::max(s, 1e-8f)
}
// EMA step: rho * prev + (1 - rho) * cur (fp32).
STARKV_HD inline float EmaUpdate(float prev, float cur, float rho) { return rho * prev + (1.0f - rho) * cur; }
// Cosine of two patterns from double dot and squared norms (eps 1e-8 on each norm), clamped to [0, 1].
STARKV_HD inline float CosStability(double dot, double na, double nm) {
  const double sa = std::sqrt(na), sm = std::sqrt(nm);
  const double c = dot / ((sa < 1e-8 ? 1e-8 : sa) * (sm < 1e-8 ? 1e-8 : sm));
  const double lo = 0.0 < c ? c : 0.0;  // std::min(1.0, std::max(0.0, c))
  return static_cast<float>(lo < 1.0 ? lo : 1.0);
}
// Frame age of a slot inside span i of nf spans (current frame -> 0); text slots are 0.
STARKV_HD inline float FrameAge(int64_t span_index, int64_t nf) {
  const int64_t a = nf - 1 - span_index;
  return static_cast<float>(a > 0 ? a : 0);
}
// STaR-KV final score of one token: MI prior, optional temporal discount D, optional AEB sharpening.
STARKV_HD inline float FuseScore(float base, float w_gstar, int n_kv, float lambda, bool apply_d, float d,
                                 bool sharpen, float inv_t) {
  float x = MiPrior(base, w_gstar, n_kv, lambda);
  if (apply_d) x *= d;
  return sharpen ? AebSharpen(x, inv_t) : x;
}

// ---- GUI-KV temporal residual ----

// || k - sum_b (b . k) b || over an orthonormal basis (r rows of d doubles, row-major): coefficients
// from k, subtraction basis vector by basis vector per element (coef: scratch of r doubles).
STARKV_HD inline double ResidualNorm(const float* k, const double* basis, int r, int d, double* coef) {
  for (int b = 0; b < r; ++b) {
    double c = 0.0;
    for (int j = 0; j < d; ++j) c += basis[static_cast<int64_t>(b) * d + j] * k[j];
    coef[b] = c;
  }
  double n = 0.0;
  for (int j = 0; j < d; ++j) {
    double v = k[j];
    for (int b = 0; b < r; ++b) v -= coef[b] * basis[static_cast<int64_t>(b) * d + j];
    n += v * v;
  }
  return std::sqrt(n);
}
// Gram-Schmidt: a key whose remaining norm n is <= 1e-10 of its original norm n0 adds no direction.
STARKV_HD inline bool GsDependent(double n, double n0) { return n <= 1e-10 * (n0 < 1e-30 ? 1e-30 : n0); }

// ---- Selection ----

// 64-bit key whose descending unsigned order is Better's order (higher score, then lower index;
// NaN lowest; -0 == +0). `negate` ranks -score (bottom-k). Index must be < 2^32.
STARKV_HD inline uint64_t RankKey(float score, int64_t index, bool negate) {
  float s = negate ? -score : score;
  uint32_t hi;
  if (s != s) {
    hi = 0u;
  } else {
    if (s == 0.0f) s = 0.0f;  // -0 -> +0
    uint32_t bits;
    memcpy(&bits, &s, sizeof bits);
    hi = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
  }
  return (static_cast<uint64_t>(hi) << 32) | static_cast<uint64_t>(~static_cast<uint32_t>(index));
}
// AdaKV per-head budget: round(n_h (1 - alpha) + floor_cap), clamped to [0, P].
STARKV_HD inline int64_t AdaKvHeadBudget(int64_t n_h, double alpha, int64_t floor_cap, int64_t P) {
  int64_t nr = static_cast<int64_t>(std::nearbyint(static_cast<double>(n_h) * (1.0 - alpha) + floor_cap));
  return nr < 0 ? 0 : (nr > P ? P : nr);
}

// ---- Compaction ----

// Source slot of destination row `dst` after compaction: the kept past slots (ascending), then the
// protected window [past_len, past_len + window).
STARKV_HD inline int64_t CompactSource(int64_t dst, const int64_t* kept, int64_t n_keep, int64_t past_len) {
  return dst < n_keep ? kept[dst] : past_len + (dst - n_keep);
}

}  // namespace starkv::kv::k
