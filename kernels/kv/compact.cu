// Compaction of one layer's KV store [num_kv_heads][capacity][head_dim] by a selection (spec 2.10 K8;
// CPU: CompactLayer in native/kv/compact.cpp). Destination row dst of head g reads source slot
// k::CompactSource(dst, kept list, n_keep, past_len): the kept past slots (ascending), then the window.
// In place: one block per (head, tensor) moves ascending chunks of rows through shared memory; a chunk
// is read completely before it is written, and every later chunk's sources lie above this chunk's
// destinations (sources ascend and src >= dst), so no row is overwritten before it is read.
// With scratch: all rows are gathered in parallel into scratch, then copied back.
#include "kv_common.cuh"

namespace starkv::cuda::kv {
namespace {
using namespace detail;

constexpr int kChunkFloats = 8192;  // 32 KB of shared memory per block

// grid (Hkv, 2 tensors), block 256.
__global__ void CompactInPlaceKernel(float* keys, float* values, int64_t cap, int d, const int64_t* kept, int lists,
                                     int64_t n_keep, int64_t past_len, int64_t new_len) {
  __shared__ float buf[kChunkFloats];
  float* base = blockIdx.y == 0 ? keys : values;
  if (!base) return;
  const int g = blockIdx.x;
  float* h = base + static_cast<int64_t>(g) * cap * d;
  const int64_t* l = kept + (lists == 1 ? 0 : static_cast<int64_t>(g) * n_keep);
  const int rows = kChunkFloats / d > 0 ? kChunkFloats / d : 1;
  for (int64_t d0 = 0; d0 < new_len; d0 += rows) {
    const int64_t m = new_len - d0 < rows ? new_len - d0 : rows;
    for (int64_t e = threadIdx.x; e < m * d; e += blockDim.x) {
      const int64_t dst = d0 + e / d;
      buf[e] = h[k::CompactSource(dst, l, n_keep, past_len) * d + e % d];
    }
    __syncthreads();
    for (int64_t e = threadIdx.x; e < m * d; e += blockDim.x) h[(d0 + e / d) * d + e % d] = buf[e];
    __syncthreads();
  }
}

__global__ void GatherKernel(const float* src, int64_t cap, int d, const int64_t* kept, int lists, int64_t n_keep,
                             int64_t past_len, int64_t new_len, int64_t total, float* dst) {
  const int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= total) return;
  const int64_t c = e % d, row = (e / d) % new_len, g = e / (static_cast<int64_t>(d) * new_len);
  const int64_t* l = kept + (lists == 1 ? 0 : g * n_keep);
  dst[e] = src[(g * cap + k::CompactSource(row, l, n_keep, past_len)) * d + c];
}

__global__ void CopyBackKernel(const float* scratch, int64_t cap, int d, int64_t new_len, int64_t total, float* base) {
  const int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= total) return;
  const int64_t c = e % d, row = (e / d) % new_len, g = e / (static_cast<int64_t>(d) * new_len);
  base[(g * cap + row) * d + c] = scratch[e];
}

// Slot positions: one block, ascending chunks (same argument as the rows).
__global__ void __launch_bounds__(1024) CompactTokensKernel(int64_t* pos, const int64_t* kept, int64_t n_keep, int64_t past_len,
                                    int64_t new_len) {
  __shared__ int64_t buf[1024];
  for (int64_t d0 = 0; d0 < new_len; d0 += 1024) {
    const int64_t dst = d0 + threadIdx.x;
    if (dst < new_len) buf[threadIdx.x] = pos[k::CompactSource(dst, kept, n_keep, past_len)];
    __syncthreads();
    if (dst < new_len) pos[dst] = buf[threadIdx.x];
    __syncthreads();
  }
}

}  // namespace

size_t CompactScratchBytes(int num_kv_heads, int64_t new_len, int head_dim) {
  return sizeof(float) * static_cast<size_t>(num_kv_heads) * static_cast<size_t>(new_len) * head_dim;
}

int64_t CompactKv(float* keys, float* values, int num_kv_heads, int64_t capacity, int head_dim, const int64_t* kept,
                  int lists, int64_t n_keep, int64_t past_len, int64_t window, int64_t* slot_positions, void* scratch,
                  void* stream) {
  Require(num_kv_heads > 0 && head_dim > 0 && head_dim <= kChunkFloats, "CompactKv: bad store geometry");
  Require(lists == 1 || lists == num_kv_heads, "CompactKv: lists must be 1 (shared) or num_kv_heads");
  Require(n_keep >= 0 && n_keep <= past_len && window >= 0 && past_len + window <= capacity,
          "CompactKv: need 0 <= n_keep <= past_len and past_len + window <= capacity");
  Require(n_keep == 0 || kept, "CompactKv: kept slots are required");
  const int64_t new_len = n_keep + window;
  if (new_len == 0) return 0;
  const cudaStream_t s = Stream(stream);
  if (scratch) {
    const int64_t total = static_cast<int64_t>(num_kv_heads) * new_len * head_dim;
    for (float* base : {keys, values}) {
      if (!base) continue;
      auto* tmp = static_cast<float*>(scratch);
      GatherKernel<<<Blocks(total, 256), 256, 0, s>>>(base, capacity, head_dim, kept, lists, n_keep, past_len, new_len,
                                                      total, tmp);
      CheckLaunch("GatherKernel");
      CopyBackKernel<<<Blocks(total, 256), 256, 0, s>>>(tmp, capacity, head_dim, new_len, total, base);
      CheckLaunch("CopyBackKernel");
    }
  } else if (keys || values) {
    CompactInPlaceKernel<<<dim3(num_kv_heads, 2), 256, 0, s>>>(keys, values, capacity, head_dim, kept, lists, n_keep,
                                                               past_len, new_len);
    CheckLaunch("CompactInPlaceKernel");
  }
  if (slot_positions) {
    CompactTokensKernel<<<1, 1024, 0, s>>>(slot_positions, kept, n_keep, past_len, new_len);
    CheckLaunch("CompactTokensKernel");
  }
  return new_len;
}

}  // namespace starkv::cuda::kv
