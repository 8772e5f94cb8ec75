// Norms (double-accumulated statistics), rotate-half rotary, activations, residual add, row gather.
#include "cpu/pointwise.h"

#include <cmath>

#include "cpu/elementwise.h"

namespace starkv::cpu {
namespace {

float ApplyAct(Act a, float x) {
  switch (a) {
    case Act::Silu: return ew::Silu(x);
    case Act::GeluErf: return ew::GeluErf(x);
    case Act::QuickGelu: return ew::QuickGelu(x);
  }
  return x;
}

constexpr int64_t kElemGrain = 1 << 14;

}  // namespace

void RmsNorm(ThreadPool& pool, const float* x, int64_t M, int64_t D, const Tensor& w, float eps, float* y) {
  pool.ParallelFor(M, 4, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* xr = x + r * D;
      float* yr = y + r * D;
      double ss = 0.0;
      for (int64_t i = 0; i < D; ++i) ss += static_cast<double>(xr[i]) * xr[i];
      const float var = static_cast<float>(ss / static_cast<double>(D));
      const float inv = 1.0f / std::sqrt(var + eps);
      for (int64_t i = 0; i < D; ++i) yr[i] = ew::RmsScale(xr[i], inv, w.At(i));
    }
  });
}

void LayerNorm(ThreadPool& pool, const float* x, int64_t M, int64_t D, const Tensor& w, const Tensor& b, float eps,
               float* y) {
  pool.ParallelFor(M, 4, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * D;
      float* yr = y + r * D;
      double s = 0.0;
      for (int64_t i = 0; i < D; ++i) s += xr[i];
      const double mean = s / static_cast<double>(D);
      double v = 0.0;
      for (int64_t i = 0; i < D; ++i) v += (xr[i] - mean) * (xr[i] - mean);
      const float var = static_cast<float>(v / static_cast<double>(D));
      const float rstd = 1.0f / std::sqrt(var + eps);
      const float m = static_cast<float>(mean);
      for (int64_t i = 0; i < D; ++i) yr[i] = ew::LnScale(xr[i], m, rstd, w.At(i), b.At(i));
    }
  });
}

void Rotary(ThreadPool& pool, float* x, int64_t n, int64_t row, int heads, int hd, const float* cos, const float* sin) {
  const int half = hd / 2;
  pool.ParallelFor(n, 16, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float* c = cos + i * half;
      const float* s = sin + i * half;
      for (int h = 0; h < heads; ++h) {
        float* v = x + i * row + static_cast<int64_t>(h) * hd;
        for (int j = 0; j < half; ++j) ew::RotatePair(v[j], v[j + half], c[j], s[j]);
      }
    }
  });
}

void GatedAct(ThreadPool& pool, Act act, const float* gate, const float* up, int64_t n, float* out) {
  pool.ParallelFor(n, kElemGrain, [&](int64_t b, int64_t e) {
    if (act == Act::Silu) {
      for (int64_t i = b; i < e; ++i) out[i] = ew::Silu(gate[i]) * up[i];
    } else {
      for (int64_t i = b; i < e; ++i) out[i] = ApplyAct(act, gate[i]) * up[i];
    }
  });
}

void Activation(ThreadPool& pool, Act act, float* x, int64_t n) {
  pool.ParallelFor(n, kElemGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) x[i] = ApplyAct(act, x[i]);
  });
}

void Add(ThreadPool& pool, float* y, const float* x, int64_t n) {
  pool.ParallelFor(n, kElemGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] += x[i];
  });
}

void GatherRows(ThreadPool& pool, const Tensor& table, const int32_t* ids, int64_t n, float* out) {
  const int64_t D = table.Cols();
  pool.ParallelFor(n, 8, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const void* row = table.Row(ids[i]);
      for (int64_t d = 0; d < D; ++d) out[i * D + d] = LoadF32(row, table.dtype, d);
    }
  });
}

}  // namespace starkv::cpu
