// Per-element math of the compression methods, as small inline functions that a CUDA backend can
// reuse unchanged (STARKV_HD = __host__ __device__ there). fp32 storage, fp64 inside reductions.
#pragma once

#include <cmath>
#include <cstdint>

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

}  // namespace starkv::kv::k
