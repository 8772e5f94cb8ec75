// Norms (double-accumulated statistics), rotate-half rotary, activations, residual add, row gather.
#include "cpu/pointwise.h"

#include <cmath>

#include "cpu/elementwise.h"
#include "cpu/simd.h"
#include "kv/kernels.h"  // the shared row-norm math (SumSquares, NormFromSumSquares)

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

// 16 elements of a 1-D weight (any dtype) from index i, as fp32.
#if defined(__AVX512F__)
inline __m512 LoadW16(const Tensor& w, int64_t i) {
  if (w.dtype == DType::F32) return Load16(static_cast<const float*>(w.data) + i);
  return Load16(static_cast<const uint16_t*>(w.data) + i, w.dtype);
}

// silu / quick_gelu / gelu_erf on 16 lanes with the vectorised exp (gelu_erf stays scalar).
inline bool VecAct(Act a, __m512 x, __m512* out) {
  const __m512 one = _mm512_set1_ps(1.0f);
  if (a == Act::Silu) {
    *out = _mm512_div_ps(x, _mm512_add_ps(one, Exp16(_mm512_sub_ps(_mm512_setzero_ps(), x))));
    return true;
  }
  if (a == Act::QuickGelu) {
    const __m512 e = Exp16(_mm512_mul_ps(x, _mm512_set1_ps(-1.702f)));
    *out = _mm512_mul_ps(x, _mm512_div_ps(one, _mm512_add_ps(one, e)));
    return true;
  }
  return false;
}
#elif defined(STARKV_AVX2)
// The same on 8 lanes (AVX2 CPUs).
inline bool VecAct8(Act a, __m256 x, __m256* out) {
  const __m256 one = _mm256_set1_ps(1.0f);
  if (a == Act::Silu) {
    *out = _mm256_div_ps(x, _mm256_add_ps(one, Exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
    return true;
  }
  if (a == Act::QuickGelu) {
    const __m256 e = Exp8(_mm256_mul_ps(x, _mm256_set1_ps(-1.702f)));
    *out = _mm256_mul_ps(x, _mm256_div_ps(one, _mm256_add_ps(one, e)));
    return true;
  }
  return false;
}
#endif

}  // namespace

void RowNorms(ThreadPool& pool, const float* x, int64_t rows, int64_t width, float* y) {
  pool.ParallelFor(rows, 16, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      y[r] = kv::k::NormFromSumSquares(kv::k::SumSquares(x + r * width, 0, width, 1));
    }
  });
}

void RmsNorm(ThreadPool& pool, const float* x, int64_t M, int64_t D, const Tensor& w, float eps, float* y) {
  pool.ParallelFor(M, 4, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* xr = x + r * D;
      float* yr = y + r * D;
      double ss = 0.0;
      for (int64_t i = 0; i < D; ++i) ss += static_cast<double>(xr[i]) * xr[i];
      const float inv = ew::InvRms(ss / static_cast<double>(D), eps);
      int64_t i = 0;
#if defined(__AVX512F__)
      const __m512 iv = _mm512_set1_ps(inv);
      for (; i + 16 <= D; i += 16) _mm512_storeu_ps(yr + i, _mm512_mul_ps(LoadW16(w, i), _mm512_mul_ps(Load16(xr + i), iv)));
#endif
      for (; i < D; ++i) yr[i] = ew::RmsScale(xr[i], inv, w.At(i));
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
      const float rstd = ew::InvRms(v / static_cast<double>(D), eps);
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
    int64_t i = b;
#if defined(__AVX512F__)
    __m512 v;
    if (VecAct(act, _mm512_setzero_ps(), &v))
      for (; i + 16 <= e; i += 16) {
        VecAct(act, Load16(gate + i), &v);
        _mm512_storeu_ps(out + i, _mm512_mul_ps(v, Load16(up + i)));
      }
#elif defined(STARKV_AVX2)
    __m256 v;
    if (VecAct8(act, _mm256_setzero_ps(), &v))
      for (; i + 8 <= e; i += 8) {
        VecAct8(act, _mm256_loadu_ps(gate + i), &v);
        _mm256_storeu_ps(out + i, _mm256_mul_ps(v, _mm256_loadu_ps(up + i)));
      }
#endif
    for (; i < e; ++i) out[i] = ApplyAct(act, gate[i]) * up[i];
  });
}

void Activation(ThreadPool& pool, Act act, float* x, int64_t n) {
  pool.ParallelFor(n, kElemGrain, [&](int64_t b, int64_t e) {
    int64_t i = b;
#if defined(__AVX512F__)
    __m512 v;
    if (VecAct(act, _mm512_setzero_ps(), &v))
      for (; i + 16 <= e; i += 16) {
        VecAct(act, Load16(x + i), &v);
        _mm512_storeu_ps(x + i, v);
      }
#elif defined(STARKV_AVX2)
    __m256 v;
    if (VecAct8(act, _mm256_setzero_ps(), &v))
      for (; i + 8 <= e; i += 8) {
        VecAct8(act, _mm256_loadu_ps(x + i), &v);
        _mm256_storeu_ps(x + i, v);
      }
#endif
    for (; i < e; ++i) x[i] = ApplyAct(act, x[i]);
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
