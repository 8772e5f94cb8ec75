// GUI-KV temporal redundancy (spec 3.3 step 4, 3.5; CPU: guikv.cpp): per KV head, an orthonormal
// basis of the first `rank` current-frame keys by Gram-Schmidt with re-orthogonalisation (one warp per
// head, lanes own head_dim elements, double), then every previous-frame key's residual norm against
// that basis (one thread per key, k::ResidualNorm, basis in shared memory when it fits). The n_zero
// smallest residuals are picked with TopKRows(bottom = true) and zeroed with ZeroSelected.
#include "kv_common.cuh"

namespace starkv::cuda::kv {
namespace {
using namespace detail;

constexpr int kMaxDim = 256;              // head_dim limit (8 elements per lane)
constexpr int kPerLane = kMaxDim / 32;

__device__ inline double WarpAllSum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// grid num_kv_heads, block 32. basis [Hkv][rank][d], count [Hkv].
__global__ void BasisKernel(const float* keys, int64_t cap, int d, int64_t cur_start, int rank, double* basis,
                            int* count) {
  const int g = blockIdx.x, lane = threadIdx.x;
  const float* kg = keys + static_cast<int64_t>(g) * cap * d + cur_start * d;
  double* bg = basis + static_cast<int64_t>(g) * rank * d;
  double v[kPerLane];
  int nb = 0;
  for (int i = 0; i < rank; ++i) {
    double n0 = 0.0;
    for (int e = 0; e < kPerLane; ++e) {
      const int j = lane + 32 * e;
      v[e] = j < d ? static_cast<double>(kg[static_cast<int64_t>(i) * d + j]) : 0.0;
      n0 += v[e] * v[e];
    }
    n0 = sqrt(WarpAllSum(n0));
    for (int pass = 0; pass < 2; ++pass)
      for (int b = 0; b < nb; ++b) {
        double c = 0.0;
        for (int e = 0; e < kPerLane; ++e) {
          const int j = lane + 32 * e;
          if (j < d) c += bg[static_cast<int64_t>(b) * d + j] * v[e];
        }
        c = WarpAllSum(c);
        for (int e = 0; e < kPerLane; ++e) {
          const int j = lane + 32 * e;
          if (j < d) v[e] -= c * bg[static_cast<int64_t>(b) * d + j];
        }
      }
    double n = 0.0;
    for (int e = 0; e < kPerLane; ++e) n += v[e] * v[e];
    n = sqrt(WarpAllSum(n));
    if (k::GsDependent(n, n0)) continue;  // uniform across the warp (all lanes hold the same sums)
    for (int e = 0; e < kPerLane; ++e) {
      const int j = lane + 32 * e;
      if (j < d) bg[static_cast<int64_t>(nb) * d + j] = v[e] / n;
    }
    __syncwarp();
    ++nb;
  }
  if (lane == 0) count[g] = nb;
}

// grid (tiles over n_prev, Hkv), block 128; dynamic smem = rank * d doubles when use_smem. kCoef >= rank:
// ResidualNorm's coefficients live in local memory, which a GPU reserves for every thread it can hold at
// once (kCoef doubles x 2048 threads x SMs; 528 MiB on an H200 at kCoef 256, kept for the process), so
// the common ranks (GUI-KV's default 32) get a small array.
template <int kCoef>
__global__ void ResidualKernel(const float* keys, int64_t cap, int d, int rank, const double* basis, const int* count,
                               const int64_t* positions, int64_t n_prev, bool use_smem, float* res) {
  extern __shared__ double sb[];
  const int g = blockIdx.y, nb = count[g];
  const double* bg = basis + static_cast<int64_t>(g) * rank * d;
  if (use_smem) {
    for (int e = threadIdx.x; e < nb * d; e += blockDim.x) sb[e] = bg[e];
    __syncthreads();
    bg = sb;
  }
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n_prev) return;
  double coef[kCoef];
  const float* kr = keys + static_cast<int64_t>(g) * cap * d + positions[i] * d;
  res[static_cast<int64_t>(g) * n_prev + i] = static_cast<float>(k::ResidualNorm(kr, bg, nb, d, coef));
}

__global__ void ZeroSelectedKernel(float* scores, int G, int64_t P, const int64_t* positions, const int64_t* sel,
                                   int64_t sel_ld, int64_t nz, int64_t total) {
  const int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= total) return;
  const int64_t j = e % G, s = (e / G) % nz, g = e / (static_cast<int64_t>(G) * nz);
  const int64_t pos = positions[sel[g * sel_ld + s]];
  if (pos < P) scores[(g * G + j) * P + pos] = 0.0f;
}

}  // namespace

size_t LowRankScratchBytes(int num_kv_heads, int rank, int head_dim) {
  return sizeof(double) * static_cast<size_t>(num_kv_heads) * rank * head_dim + sizeof(int) * num_kv_heads;
}

void LowRankResidual(const float* keys, int64_t kv_capacity, int num_kv_heads, int head_dim, int64_t cur_start,
                     int rank, const int64_t* positions, int64_t n_prev, float* res, void* scratch, void* stream) {
  Require(keys && positions && res && scratch, "LowRankResidual: keys, positions, res and scratch are required");
  Require(head_dim >= 1 && head_dim <= kMaxDim, "LowRankResidual: head_dim must be in [1, 256]");
  Require(rank >= 0 && rank <= head_dim, "LowRankResidual: rank must be in [0, head_dim]");
  Require(num_kv_heads > 0, "LowRankResidual: num_kv_heads must be > 0");
  if (n_prev <= 0) return;
  const cudaStream_t s = Stream(stream);
  auto* basis = static_cast<double*>(scratch);
  int* count = reinterpret_cast<int*>(basis + static_cast<int64_t>(num_kv_heads) * rank * head_dim);
  BasisKernel<<<num_kv_heads, 32, 0, s>>>(keys, kv_capacity, head_dim, cur_start, rank, basis, count);
  CheckLaunch("BasisKernel");
  const size_t smem = sizeof(double) * static_cast<size_t>(rank) * head_dim;
  const bool use_smem = smem <= kSmemDefault;
  const auto residuals = rank <= 32 ? ResidualKernel<32> : ResidualKernel<kMaxDim>;
  residuals<<<dim3(Blocks(n_prev, 128), num_kv_heads), 128, use_smem ? smem : 0, s>>>(
      keys, kv_capacity, head_dim, rank, basis, count, positions, n_prev, use_smem, res);
  CheckLaunch("ResidualKernel");
}

void ZeroSelected(float* scores, int num_heads, int num_kv_heads, int64_t P, const int64_t* positions,
                  const int64_t* sel, int64_t sel_ld, int64_t nz, void* stream) {
  Require(num_kv_heads > 0 && num_heads % num_kv_heads == 0, "ZeroSelected: bad head counts");
  const int G = num_heads / num_kv_heads;
  const int64_t total = static_cast<int64_t>(num_kv_heads) * nz * G;
  if (total <= 0) return;
  ZeroSelectedKernel<<<Blocks(total, 256), 256, 0, Stream(stream)>>>(scores, G, P, positions, sel, sel_ld, nz, total);
  CheckLaunch("ZeroSelectedKernel");
}

}  // namespace starkv::cuda::kv
