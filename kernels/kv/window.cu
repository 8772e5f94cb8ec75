// Observation-window attention scores without materialising the [W, L] attention (spec 1.5, 2.10 K1,
// 4.2): pass 1 computes, per key tile and window row, the tile max and exp-sum; a finalize kernel
// merges the tiles online into the row max m and the fp32 row sum z; pass 2 recomputes the logits of
// each key and accumulates exp(x - m) / z over the rows that see it (double, rows in order, as the CPU):
// past keys only (SnapKV's window scores) or every key (H2O's accumulated attention).
// The VL-Cache variant (eager logits, all causal keys) counts probabilities not above a threshold.
#include "kv_common.cuh"

namespace starkv::cuda::kv {
namespace {
using namespace detail;

constexpr int kTile = 64;  // keys per block; shared tile kTile x (d + 1) floats (d = 128: 33 KB)

struct RowStat {
  float m;
  float z;
};
struct TileStat {
  float m;
  double s;
};

__device__ inline float Logit(const float* q, const float* kr, int d, float scale, bool eager) {
  return eager ? k::EagerLogit(q, kr, d, scale) : k::WindowLogit(q, kr, d, scale);
}

// Loads keys [j0, j0 + kTile) of one KV head into shared memory (row stride d + 1: no bank conflicts
// when each thread walks its own row).
__device__ inline void LoadKeyTile(float* tile, const float* kh, int64_t j0, int64_t limit, int d) {
  for (int e = threadIdx.x; e < kTile * d; e += blockDim.x) {
    const int r = e / d, c = e % d;
    const int64_t j = j0 + r;
    tile[r * (d + 1) + c] = j < limit ? kh[j * d + c] : 0.0f;
  }
  __syncthreads();
}

// grid (tiles over L, H), block kTile. part[(h * W + i) * tiles + tile].
__global__ void TileStatsKernel(WindowArgs a, float scale, bool eager, int64_t tiles, TileStat* part) {
  extern __shared__ float smem[];
  __shared__ float fbuf[32];
  __shared__ double dbuf[32];
  const int d = a.head_dim, h = blockIdx.y, G = a.num_heads / a.num_kv_heads;
  const int64_t L = a.seq_len, W = a.rows, j0 = static_cast<int64_t>(blockIdx.x) * kTile, j = j0 + threadIdx.x;
  const float* kh = a.keys + static_cast<int64_t>(h / G) * a.kv_capacity * d;
  LoadKeyTile(smem, kh, j0, L, d);
  const float* kr = smem + threadIdx.x * (d + 1);
  for (int64_t i = 0; i < W; ++i) {
    const float* q = a.queries + (static_cast<int64_t>(h) * a.q_rows + (a.q_rows - W + i)) * d;
    const bool vis = j < L && k::WindowVisible(j, i, L, W);
    const float x = vis ? Logit(q, kr, d, scale, eager) : -INFINITY;
    const float m = BlockMax(x, fbuf);
    const double e = (vis && m != -INFINITY) ? static_cast<double>(k::ExpShift(x, m)) : 0.0;
    const double s = BlockSum(e, dbuf);
    if (threadIdx.x == 0) part[(static_cast<int64_t>(h) * W + i) * tiles + blockIdx.x] = TileStat{m, s};
  }
}

// One thread per (h, row): online merge of the tile statistics.
__global__ void FinalizeKernel(const TileStat* part, int64_t tiles, int64_t n_rows, RowStat* out) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= n_rows) return;
  const TileStat* p = part + r * tiles;
  float m = -INFINITY;
  for (int64_t t = 0; t < tiles; ++t) m = p[t].m > m ? p[t].m : m;
  double z = 0.0;
  for (int64_t t = 0; t < tiles; ++t)
    if (p[t].s > 0.0) z += p[t].s * exp(static_cast<double>(p[t].m) - static_cast<double>(m));
  out[r] = RowStat{m, static_cast<float>(z)};
}

// grid (tiles over cols, H), block kTile: column sums over the W rows for keys t < cols, each row adding
// only the keys it sees (cols = P: past keys, visible to every row; cols = L: H2O's accumulated attention).
__global__ void ColsumKernel(WindowArgs a, float scale, const RowStat* stat, int64_t cols, float* sums) {
  extern __shared__ float smem[];
  const int d = a.head_dim, h = blockIdx.y, G = a.num_heads / a.num_kv_heads;
  const int64_t L = a.seq_len, W = a.rows, j0 = static_cast<int64_t>(blockIdx.x) * kTile;
  const int64_t j = j0 + threadIdx.x;
  const float* kh = a.keys + static_cast<int64_t>(h / G) * a.kv_capacity * d;
  LoadKeyTile(smem, kh, j0, cols, d);
  if (j >= cols) return;
  const float* kr = smem + threadIdx.x * (d + 1);
  double acc = 0.0;
  // rows in order, as the CPU, from the first that sees key j (WindowVisible: j <= L - W + i)
  for (int64_t i = j > L - W ? j - (L - W) : 0; i < W; ++i) {
    const float* q = a.queries + (static_cast<int64_t>(h) * a.q_rows + (a.q_rows - W + i)) * d;
    const RowStat st = stat[static_cast<int64_t>(h) * W + i];
    acc += static_cast<double>(k::SoftmaxProb(k::ExpShift(k::WindowLogit(q, kr, d, scale), st.m), st.z));
  }
  sums[static_cast<int64_t>(h) * cols + j] = static_cast<float>(acc);
}

// grid (tiles over L, H), block kTile: per row, count visible keys whose probability is not > thr.
__global__ void ZeroCountKernel(WindowArgs a, float scale, float thr, const RowStat* stat,
                                unsigned long long* zeros) {
  extern __shared__ float smem[];
  __shared__ int ibuf[32];
  const int d = a.head_dim, h = blockIdx.y, G = a.num_heads / a.num_kv_heads;
  const int64_t L = a.seq_len, W = a.rows, j0 = static_cast<int64_t>(blockIdx.x) * kTile, j = j0 + threadIdx.x;
  const float* kh = a.keys + static_cast<int64_t>(h / G) * a.kv_capacity * d;
  LoadKeyTile(smem, kh, j0, L, d);
  const float* kr = smem + threadIdx.x * (d + 1);
  for (int64_t i = 0; i < W; ++i) {
    const bool vis = j < L && k::WindowVisible(j, i, L, W);
    int zero = 0;
    if (vis) {
      const float* q = a.queries + (static_cast<int64_t>(h) * a.q_rows + (a.q_rows - W + i)) * d;
      const RowStat st = stat[static_cast<int64_t>(h) * W + i];
      const float prob = k::SoftmaxProb(k::ExpShift(k::EagerLogit(q, kr, d, scale), st.m), st.z);
      zero = k::AboveThreshold(prob, thr) ? 0 : 1;
    }
    const int c = BlockSum(zero, ibuf);
    if (threadIdx.x == 0 && c) atomicAdd(zeros + static_cast<int64_t>(h) * W + i, static_cast<unsigned long long>(c));
  }
}

void Validate(const WindowArgs& a) {
  Require(a.queries && a.keys, "window scores: queries and keys are required");
  Require(a.num_heads > 0 && a.num_kv_heads > 0 && a.num_heads % a.num_kv_heads == 0,
          "window scores: num_heads must be a positive multiple of num_kv_heads");
  Require(a.head_dim > 0 && a.head_dim <= 256, "window scores: head_dim must be in [1, 256]");
  Require(a.seq_len >= 1 && a.kv_capacity >= a.seq_len, "window scores: need 1 <= seq_len <= kv_capacity");
  Require(a.rows >= 1 && a.rows <= a.q_rows && a.rows <= a.seq_len,
          "window scores: rows must be in [1, min(q_rows, seq_len)]");
}

int64_t Tiles(int64_t n) { return (n + kTile - 1) / kTile; }
size_t TileSmem(int d) { return sizeof(float) * kTile * (d + 1); }
// The kernels' static shared arrays, which count with the tile against a block's default 48 KB (at
// head_dim 190-191 the tile alone fits and tile + arrays do not).
constexpr size_t kTileStatsStatic = sizeof(float) * 32 + sizeof(double) * 32;  // fbuf, dbuf
constexpr size_t kZeroCountStatic = sizeof(int) * 32;                           // ibuf

// Tile stats + finalize into scratch; returns the RowStat array inside scratch.
RowStat* RowStats(const WindowArgs& a, float scale, bool eager, void* scratch, cudaStream_t s) {
  const int64_t tiles = Tiles(a.seq_len), n_rows = static_cast<int64_t>(a.num_heads) * a.rows;
  auto* part = static_cast<TileStat*>(scratch);
  auto* stat = reinterpret_cast<RowStat*>(part + n_rows * tiles);
  const size_t smem = TileSmem(a.head_dim);
  Check(AllowDynamicSmem(TileStatsKernel, smem, kTileStatsStatic), "window tile smem");
  TileStatsKernel<<<dim3(static_cast<unsigned>(tiles), a.num_heads), kTile, smem, s>>>(a, scale, eager, tiles, part);
  CheckLaunch("TileStatsKernel");
  FinalizeKernel<<<Blocks(n_rows, 128), 128, 0, s>>>(part, tiles, n_rows, stat);
  CheckLaunch("FinalizeKernel");
  return stat;
}

// Row statistics, then the column sums of keys [0, cols).
void Colsum(const WindowArgs& a, int64_t cols, float* sums, void* scratch, void* stream) {
  const cudaStream_t s = detail::Stream(stream);
  const float scale = k::SqrtHeadDim(a.head_dim);
  RowStat* stat = RowStats(a, scale, false, scratch, s);
  if (cols <= 0) return;
  const size_t smem = TileSmem(a.head_dim);
  Check(AllowDynamicSmem(ColsumKernel, smem, 0), "colsum smem");
  ColsumKernel<<<dim3(static_cast<unsigned>(Tiles(cols)), a.num_heads), kTile, smem, s>>>(a, scale, stat, cols, sums);
  CheckLaunch("ColsumKernel");
}

}  // namespace

size_t WindowScratchBytes(const WindowArgs& a) {
  const int64_t n_rows = static_cast<int64_t>(a.num_heads) * a.rows;
  return sizeof(TileStat) * n_rows * Tiles(a.seq_len) + sizeof(RowStat) * n_rows;
}

void WindowColsum(const WindowArgs& a, float* sums, void* scratch, void* stream) {
  Validate(a);
  Require(sums && scratch, "WindowColsum: sums and scratch are required");
  Colsum(a, a.seq_len - a.rows, sums, scratch, stream);
}

void AccumulatedColsum(const WindowArgs& a, float* sums, void* scratch, void* stream) {
  Validate(a);
  Require(sums && scratch, "AccumulatedColsum: sums and scratch are required");
  Colsum(a, a.seq_len, sums, scratch, stream);
}

void WindowZeroCounts(const WindowArgs& a, float threshold, int64_t* zeros, void* scratch, void* stream) {
  Validate(a);
  Require(zeros && scratch, "WindowZeroCounts: zeros and scratch are required");
  const cudaStream_t s = detail::Stream(stream);
  const float scale = k::InvSqrtHeadDim(a.head_dim);
  RowStat* stat = RowStats(a, scale, true, scratch, s);
  Check(cudaMemsetAsync(zeros, 0, sizeof(int64_t) * a.num_heads * a.rows, s), "zero counts memset");
  const size_t smem = TileSmem(a.head_dim);
  Check(AllowDynamicSmem(ZeroCountKernel, smem, kZeroCountStatic), "zero count smem");
  ZeroCountKernel<<<dim3(static_cast<unsigned>(Tiles(a.seq_len)), a.num_heads), kTile, smem, s>>>(
      a, scale, threshold, stat, reinterpret_cast<unsigned long long*>(zeros));
  CheckLaunch("ZeroCountKernel");
}

}  // namespace starkv::cuda::kv
