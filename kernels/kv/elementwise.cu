// Pooling, group reductions, argmax over groups, spatial saliency, frame ages, STaR-KV temporal EMA
// and the fused STaR-KV score: one thread per output element (or one block per reduction), each
// element computed by the STARKV_HD function the CPU calls.
#include "kv_common.cuh"

namespace starkv::cuda::kv {
namespace {
using namespace detail;

__global__ void PoolKernel(const float* x, int rows, int64_t n, int kernel, bool max_pool, float* out) {
  const int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= static_cast<int64_t>(rows) * n) return;
  const int64_t r = e / n, t = e % n;
  const float* xr = x + r * n;
  out[e] = max_pool ? k::MaxPoolAt(xr, n, t, kernel) : k::AvgPoolAt(xr, n, t, kernel);
}

__global__ void GroupReduceKernel(const float* x, int per_group, int groups, int64_t n, bool max_reduce, float* out) {
  const int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= static_cast<int64_t>(groups) * n) return;
  const int64_t g = e / n, t = e % n;
  const float* p = x + g * per_group * n + t;
  out[e] = max_reduce ? k::GroupMaxAt(p, n, per_group) : k::GroupMeanAt(p, n, per_group);
}

__global__ void ArgmaxKernel(const float* S, int groups, int64_t n, int* out) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t < n) out[t] = k::ArgmaxGroupAt(S + t, n, groups);
}

// One block per hidden row: r_i = ||x_i|| (double partial sums, block reduce).
__global__ void RowNormKernel(const float* hidden, int hidden_size, int64_t ld, float* r) {
  __shared__ double buf[32];
  const float* x = hidden + static_cast<int64_t>(blockIdx.x) * ld;
  const double s = BlockSum(k::SumSquares(x, threadIdx.x, hidden_size, blockDim.x), buf);
  if (threadIdx.x == 0) r[blockIdx.x] = k::NormFromSumSquares(s);
}

// One block: mean, unbiased std, z / T, softmax, alpha * weight.
__global__ void __launch_bounds__(kMaxBlock) SaliencySoftmaxKernel(const float* r, int64_t n, double alpha, double temperature, double* z,
                                      float* boost) {
  __shared__ double buf[32];
  __shared__ float fbuf[32];
  double s = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += r[i];
  const double mean = BlockSum(s, buf) / static_cast<double>(n);
  double v = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) v += (r[i] - mean) * (r[i] - mean);
  const double sd = k::UnbiasedStd(BlockSum(v, buf), n);
  // zmax over doubles: the logits are fp32 values held in doubles, so a float max is exact.
  float zm = -INFINITY;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    z[i] = k::SaliencyLogit(r[i], mean, sd, temperature);
    zm = static_cast<float>(z[i]) > zm ? static_cast<float>(z[i]) : zm;
  }
  const double zmax = BlockMax(zm, fbuf);
  double tot = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) tot += (z[i] = k::SaliencyExp(z[i], zmax));
  tot = BlockSum(tot, buf);
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) boost[i] = k::SaliencyWeight(z[i], tot, alpha);
}

__global__ void AddBoostKernel(float* scores, int rows, int64_t P, int64_t start, const float* boost, int64_t n) {
  const int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= static_cast<int64_t>(rows) * n) return;
  const int64_t r = e / n, i = e % n;
  if (start + i < P) scores[r * P + start + i] += boost[i];
}

__global__ void FrameAgeKernel(const int64_t* starts, const int64_t* ends, int nf, int64_t P, float* age) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= P) return;
  float a = 0.0f;
  for (int i = 0; i < nf; ++i)
    if (t >= starts[i] && t < ends[i]) a = k::FrameAge(i, nf);  // later spans overwrite (CPU loop order)
  age[t] = a;
}

// One block per group.
__global__ void __launch_bounds__(512) TemporalEmaKernel(const float* S, int64_t ld, int64_t start, int64_t n, float* ema, bool has_prev,
                                  float rho, float* stab) {
  __shared__ double buf[32];
  const int g = blockIdx.x;
  const float* sg = S + g * ld + start;
  float* mg = ema + g * n;
  double s = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += k::ClampNonNeg(sg[i]);
  const float den = k::PatternDenominator(BlockSum(s, buf));
  double dot = 0.0, na = 0.0, nm = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const float a = k::PatternValue(sg[i], den);
    const float m = has_prev ? k::EmaUpdate(mg[i], a, rho) : a;
    mg[i] = m;
    dot += static_cast<double>(a) * m;
    na += static_cast<double>(a) * a;
    nm += static_cast<double>(m) * m;
  }
  dot = BlockSum(dot, buf);
  na = BlockSum(na, buf);
  nm = BlockSum(nm, buf);
  if (threadIdx.x == 0) stab[g] = k::CosStability(dot, na, nm);
}

__global__ void FuseKernel(FuseArgs a, float* out) {
  const int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= static_cast<int64_t>(a.rows) * a.P) return;
  const int64_t t = e % a.P;
  const int g = a.gstar[t];
  const float d = a.apply_discount ? k::TemporalDiscount(a.age[t], a.stab[g], a.delta, a.eps, a.dmin) : 1.0f;
  out[e] = k::FuseScore(a.base[e], a.w_g[g], a.num_kv_heads, a.lambda, a.apply_discount, d, a.sharpen, a.inv_t);
}

}  // namespace

void Pool1d(const float* x, int rows, int64_t n, int kernel, bool max_pool, float* out, void* stream) {
  Require(kernel >= 1, "Pool1d: kernel must be >= 1");
  const int64_t total = static_cast<int64_t>(rows) * n;
  if (total <= 0) return;
  PoolKernel<<<Blocks(total, 256), 256, 0, Stream(stream)>>>(x, rows, n, kernel, max_pool, out);
  CheckLaunch("PoolKernel");
}

void GroupReduce(const float* x, int rows, int groups, int64_t n, bool max_reduce, float* out, void* stream) {
  Require(groups > 0 && rows > 0 && rows % groups == 0, "GroupReduce: rows must be a positive multiple of groups");
  const int64_t total = static_cast<int64_t>(groups) * n;
  if (total <= 0) return;
  GroupReduceKernel<<<Blocks(total, 256), 256, 0, Stream(stream)>>>(x, rows / groups, groups, n, max_reduce, out);
  CheckLaunch("GroupReduceKernel");
}

void ArgmaxOverGroups(const float* S, int groups, int64_t n, int* out, void* stream) {
  Require(groups > 0, "ArgmaxOverGroups: groups must be > 0");
  if (n <= 0) return;
  ArgmaxKernel<<<Blocks(n, 256), 256, 0, Stream(stream)>>>(S, groups, n, out);
  CheckLaunch("ArgmaxKernel");
}

void RowNorms(const float* hidden, int64_t n, int hidden_size, int64_t ld, float* r, void* stream) {
  Require(hidden_size > 0 && ld >= hidden_size, "RowNorms: bad row geometry");
  Require(n < (int64_t{1} << 31), "RowNorms: too many rows");
  if (n <= 0) return;
  RowNormKernel<<<static_cast<unsigned>(n), 256, 0, Stream(stream)>>>(hidden, hidden_size, ld, r);
  CheckLaunch("RowNormKernel");
}

size_t SaliencyScratchBytes(int64_t n) { return (sizeof(double) + sizeof(float)) * static_cast<size_t>(n > 0 ? n : 0); }

void SaliencyBoost(const float* hidden, int64_t n, int hidden_size, int64_t ld, double alpha, double temperature,
                   float* boost, void* scratch, void* stream) {
  Require(temperature > 0, "SaliencyBoost: temperature must be > 0");
  Require(hidden_size > 0 && ld >= hidden_size, "SaliencyBoost: bad hidden geometry");
  Require(n < (int64_t{1} << 31), "SaliencyBoost: too many rows");
  if (n <= 0) return;
  auto* z = static_cast<double*>(scratch);
  auto* r = reinterpret_cast<float*>(z + n);
  RowNorms(hidden, n, hidden_size, ld, r, stream);
  SaliencySoftmaxKernel<<<1, kMaxBlock, 0, Stream(stream)>>>(r, n, alpha, temperature, z, boost);
  CheckLaunch("SaliencySoftmaxKernel");
}

void AddSpanBoost(float* scores, int rows, int64_t P, int64_t start, const float* boost, int64_t n, void* stream) {
  const int64_t total = static_cast<int64_t>(rows) * n;
  if (total <= 0) return;
  AddBoostKernel<<<Blocks(total, 256), 256, 0, Stream(stream)>>>(scores, rows, P, start, boost, n);
  CheckLaunch("AddBoostKernel");
}

void FrameAges(const int64_t* span_starts, const int64_t* span_ends, int nf, int64_t P, float* age, void* stream) {
  if (P <= 0) return;
  FrameAgeKernel<<<Blocks(P, 256), 256, 0, Stream(stream)>>>(span_starts, span_ends, nf, P, age);
  CheckLaunch("FrameAgeKernel");
}

void TemporalEma(const float* S, int64_t ld, int groups, int64_t start, int64_t n, float* ema, bool has_prev, float rho,
                 float* stab, void* stream) {
  if (groups <= 0 || n <= 0) return;
  TemporalEmaKernel<<<groups, 512, 0, Stream(stream)>>>(S, ld, start, n, ema, has_prev, rho, stab);
  CheckLaunch("TemporalEmaKernel");
}

void ElementwiseFuse(const FuseArgs& a, float* out, void* stream) {
  Require(a.base && a.gstar && a.w_g && out, "ElementwiseFuse: base, gstar, w_g and out are required");
  Require(!a.apply_discount || (a.age && a.stab), "ElementwiseFuse: the discount needs age and stab");
  const int64_t total = static_cast<int64_t>(a.rows) * a.P;
  if (total <= 0) return;
  FuseKernel<<<Blocks(total, 256), 256, 0, Stream(stream)>>>(a, out);
  CheckLaunch("FuseKernel");
}

}  // namespace starkv::cuda::kv
