// Deterministic top-k per row (spec 2.10 K7, 7.2 item 7): every (score, index) maps to a distinct
// 64-bit k::RankKey whose descending order is k::Better's order, so the k-th largest key is found
// exactly by an 8-pass radix select (8-bit digits, shared-memory histogram, one block per row) and the
// kept set is {key >= threshold}, written in ascending index order by a block-wide scan.
// bottom = true ranks -score (GUI-KV: the n_zero smallest residuals, the CPU's TopK on negated values).
#include "kv_common.cuh"

namespace starkv::cuda::kv {
namespace {
using namespace detail;

constexpr int kThreads = 512;

__global__ void __launch_bounds__(kThreads) TopKKernel(const float* scores, int64_t n, int64_t ld, const int64_t* k_per_row, int64_t k_all,
                           bool bottom, int64_t* out, int64_t out_ld) {
  __shared__ unsigned int hist[256];
  __shared__ uint64_t s_prefix, s_mask;
  __shared__ int64_t s_remaining;
  __shared__ int warp_counts[kThreads / 32];
  __shared__ int64_t s_base;
  const int r = blockIdx.x;
  const float* x = scores + static_cast<int64_t>(r) * ld;
  int64_t* o = out + static_cast<int64_t>(r) * out_ld;
  int64_t kk = k_per_row ? k_per_row[r] : k_all;
  kk = kk < 0 ? 0 : (kk > n ? n : kk);
  if (kk == 0) return;
  if (threadIdx.x == 0) {
    s_prefix = 0;
    s_mask = 0;
    s_remaining = kk;  // how many still to take at or below the current prefix
  }
  uint64_t threshold = 0;  // keep everything when k == n
  if (kk < n) {
    for (int shift = 56; shift >= 0; shift -= 8) {
      for (int b = threadIdx.x; b < 256; b += blockDim.x) hist[b] = 0;
      __syncthreads();
      const uint64_t prefix = s_prefix, mask = s_mask;
      for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        const uint64_t key = k::RankKey(x[i], i, bottom);
        if ((key & mask) == prefix) atomicAdd(&hist[(key >> shift) & 255u], 1u);
      }
      __syncthreads();
      if (threadIdx.x == 0) {
        int64_t above = 0, rem = s_remaining;
        int dg = 255;
        for (; dg > 0; --dg) {
          if (above + hist[dg] >= rem) break;
          above += hist[dg];
        }
        s_remaining = rem - above;
        s_prefix = prefix | (static_cast<uint64_t>(dg) << shift);
        s_mask = mask | (uint64_t{255} << shift);
      }
      __syncthreads();
    }
    threshold = s_prefix;  // the k-th largest key (keys are distinct)
  }
  // ascending-index output: block-wide exclusive scan of the keep flags, chunk by chunk
  if (threadIdx.x == 0) s_base = 0;
  __syncthreads();
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  for (int64_t c0 = 0; c0 < n; c0 += blockDim.x) {
    const int64_t i = c0 + threadIdx.x;
    const bool keep = i < n && k::RankKey(x[i], i, bottom) >= threshold;
    const unsigned ballot = __ballot_sync(0xffffffffu, keep);
    if (lane == 0) warp_counts[warp] = __popc(ballot);
    __syncthreads();
    int64_t off = s_base;
    for (int w = 0; w < warp; ++w) off += warp_counts[w];
    off += __popc(ballot & ((1u << lane) - 1u));
    if (keep) o[off] = i;
    __syncthreads();
    if (threadIdx.x == 0) {
      int64_t t = 0;
      for (int w = 0; w < nw; ++w) t += warp_counts[w];
      s_base += t;
    }
    __syncthreads();
  }
}

__global__ void AdaKvBudgetKernel(const int64_t* flat_top, int64_t count, int64_t P, int rows, double alpha,
                                  int64_t floor_cap, int64_t* k_out) {
  extern __shared__ unsigned long long cnt[];
  for (int r = threadIdx.x; r < rows; r += blockDim.x) cnt[r] = 0;
  __syncthreads();
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) {
    const int64_t r = flat_top[i] / P;
    if (r >= 0 && r < rows) atomicAdd(cnt + r, 1ull);
  }
  __syncthreads();
  for (int r = threadIdx.x; r < rows; r += blockDim.x)
    k_out[r] = k::AdaKvHeadBudget(static_cast<int64_t>(cnt[r]), alpha, floor_cap, P);
}

}  // namespace

void TopKRows(const float* scores, int rows, int64_t n, int64_t ld, const int64_t* k_per_row, int64_t k, bool bottom,
              int64_t* out, int64_t out_ld, void* stream) {
  Require(scores && out, "TopKRows: scores and out are required");
  Require(n >= 0 && n < (int64_t{1} << 32), "TopKRows: n must be < 2^32");
  Require(ld >= n, "TopKRows: ld must be >= n");
  if (rows <= 0 || n == 0) return;
  TopKKernel<<<rows, kThreads, 0, Stream(stream)>>>(scores, n, ld, k_per_row, k, bottom, out, out_ld);
  CheckLaunch("TopKKernel");
}

void AdaKvHeadBudgets(const int64_t* flat_top, int64_t count, int64_t P, int rows, double alpha, int64_t floor_cap,
                      int64_t* k_out, void* stream) {
  Require(rows > 0 && rows <= 4096 && P > 0, "AdaKvHeadBudgets: need 0 < rows <= 4096 and P > 0");
  AdaKvBudgetKernel<<<1, 256, sizeof(unsigned long long) * rows, Stream(stream)>>>(flat_top, count, P, rows, alpha,
                                                                                   floor_cap, k_out);
  CheckLaunch("AdaKvBudgetKernel");
}

}  // namespace starkv::cuda::kv
