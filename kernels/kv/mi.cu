// STaR-KV spatial mutual information per group over the current frame (spec 2.3 step 5, 2.10 K4;
// CPU: SpatialMi in native/kv/starkv_mi.cpp). Three kernels:
//   prep  (block per group): p = clamp(S, 0) / fp32(sum)  (double block sum)
//   rank  (tiles x groups):  exact stable ascending rank of each p (counting with AscendingBefore over
//                            shared-memory tiles, O(n^2 / threads)), value bin = ValueBin(rank)
//   hist  (block per group): value x spatial joint histogram in shared memory (atomics), marginals
//                            in the CPU's summation order, MI terms in parallel, summed in cell order
//                            by one thread (double), so MI matches the CPU to the last few ulps.
#include "kv_common.cuh"

namespace starkv::cuda::kv {
namespace {
using namespace detail;

constexpr int kRankTile = 256;

__global__ void __launch_bounds__(512) MiPrepKernel(const float* S, int64_t ld, int64_t start, int64_t n, float* pr, int* valid) {
  __shared__ double buf[32];
  const int g = blockIdx.x;
  const float* sg = S + g * ld + start;
  double s = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += k::ClampNonNeg(sg[i]);
  const float sumf = static_cast<float>(BlockSum(s, buf));
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) pr[g * n + i] = k::ClampNonNeg(sg[i]) / sumf;
  if (threadIdx.x == 0) valid[g] = sumf > 1e-12f ? 1 : 0;
}

__global__ void MiRankKernel(const float* pr, int64_t n, int value_bins, int* abin) {
  __shared__ float tile[kRankTile];
  const int g = blockIdx.y;
  const float* p = pr + g * n;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const float pi = i < n ? p[i] : 0.0f;
  int64_t rank = 0;
  for (int64_t j0 = 0; j0 < n; j0 += kRankTile) {
    __syncthreads();
    if (j0 + threadIdx.x < n) tile[threadIdx.x] = p[j0 + threadIdx.x];
    __syncthreads();
    const int m = static_cast<int>(n - j0 < kRankTile ? n - j0 : kRankTile);
    if (i < n)
      for (int t = 0; t < m; ++t) rank += k::AscendingBefore(tile[t], j0 + t, pi, i) ? 1 : 0;
  }
  if (i < n) abin[g * n + i] = static_cast<int>(k::ValueBin(rank, n, value_bins));
}

// Dynamic shared memory: counts[vb * ny] (int), pa[vb], py[ny], terms[vb * ny] (double).
__global__ void MiHistKernel(const int* abin, const int* valid, int64_t n, int64_t gh, int64_t gw, int vb, int rbins,
                             int cbins, double* mi) {
  extern __shared__ double dsm[];
  const int ny = rbins * cbins, cells = vb * ny;
  double* terms = dsm;
  double* pa = terms + cells;
  double* py = pa + vb;
  int* counts = reinterpret_cast<int*>(py + ny);
  __shared__ int ua, uy;
  const int g = blockIdx.x;
  for (int c = threadIdx.x; c < cells; c += blockDim.x) counts[c] = 0;
  if (threadIdx.x == 0) ua = uy = 0;
  __syncthreads();
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const int64_t y = k::SpatialBin(i, gh, gw, rbins, cbins);
    atomicAdd(counts + abin[g * n + i] * ny + y, 1);
  }
  __syncthreads();
  const double dn = static_cast<double>(n);
  for (int a = threadIdx.x; a < vb; a += blockDim.x) {  // CPU order: over y for each a
    double s = 0.0;
    int any = 0;
    for (int y = 0; y < ny; ++y) {
      s += static_cast<double>(counts[a * ny + y]) / dn;
      any |= counts[a * ny + y];
    }
    pa[a] = s;
    if (any) atomicAdd(&ua, 1);
  }
  for (int y = threadIdx.x; y < ny; y += blockDim.x) {  // CPU order: over a for each y
    double s = 0.0;
    int any = 0;
    for (int a = 0; a < vb; ++a) {
      s += static_cast<double>(counts[a * ny + y]) / dn;
      any |= counts[a * ny + y];
    }
    py[y] = s;
    if (any) atomicAdd(&uy, 1);
  }
  __syncthreads();
  for (int c = threadIdx.x; c < cells; c += blockDim.x)
    terms[c] = k::MiTerm(static_cast<double>(counts[c]) / dn, pa[c / ny], py[c % ny]);
  __syncthreads();
  if (threadIdx.x == 0) {
    double s = 0.0;
    for (int c = 0; c < cells; ++c) s += terms[c];
    const bool ok = valid[g] && n > 1 && ua > 1 && uy > 1;
    mi[g] = ok ? (s > 0.0 ? s : 0.0) : 0.0;
  }
}

size_t HistSmem(int vb, int rbins, int cbins) {
  const size_t ny = static_cast<size_t>(rbins) * cbins, cells = vb * ny;
  return sizeof(double) * (cells + vb + ny) + sizeof(int) * cells;
}

}  // namespace

size_t SpanHistMiScratchBytes(int groups, int64_t n) {
  return (sizeof(float) + sizeof(int)) * static_cast<size_t>(groups) * static_cast<size_t>(n > 0 ? n : 0) +
         sizeof(int) * groups;
}

void SpanHistMi(const float* S, int64_t ld, int groups, int64_t start, int64_t n, int64_t gh, int64_t gw,
                int value_bins, int row_bins, int col_bins, double* mi, void* scratch, void* stream) {
  Require(S && mi && scratch, "SpanHistMi: S, mi and scratch are required");
  Require(groups > 0 && gh >= 1 && gw >= 1, "SpanHistMi: groups, gh and gw must be >= 1");
  const int vb = value_bins > 1 ? value_bins : 1, rb = row_bins > 1 ? row_bins : 1, cb = col_bins > 1 ? col_bins : 1;
  const size_t smem = HistSmem(vb, rb, cb);
  Require(smem + 2 * sizeof(int) /* ua, uy */ <= kSmemDefault, "SpanHistMi: value_bins x row_bins x col_bins histogram does not fit shared memory");
  const cudaStream_t s = Stream(stream);
  if (n <= 1) {  // CPU: MI 0
    Check(cudaMemsetAsync(mi, 0, sizeof(double) * groups, s), "mi memset");
    return;
  }
  Require(n < (int64_t{1} << 31), "SpanHistMi: span too long");
  auto* pr = static_cast<float*>(scratch);
  auto* abin = reinterpret_cast<int*>(pr + static_cast<int64_t>(groups) * n);
  int* valid = abin + static_cast<int64_t>(groups) * n;
  MiPrepKernel<<<groups, 512, 0, s>>>(S, ld, start, n, pr, valid);
  CheckLaunch("MiPrepKernel");
  MiRankKernel<<<dim3(Blocks(n, kRankTile), groups), kRankTile, 0, s>>>(pr, n, vb, abin);
  CheckLaunch("MiRankKernel");
  MiHistKernel<<<groups, 256, smem, s>>>(abin, valid, n, gh, gw, vb, rb, cb, mi);
  CheckLaunch("MiHistKernel");
}

}  // namespace starkv::cuda::kv
