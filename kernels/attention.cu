// Flash-style attention: an online softmax in fp32 over key tiles held in shared memory, never
// materialising the score matrix. A block is 8 warps that share one KV head; each warp owns one
// (query row, query head) pair:
//   prefill / vision: block = 8 consecutive query rows of one query head (grid: row tiles x heads);
//   decode-like (few rows, GQA): block = the query heads of one KV group for 8/group rows (grid: rows x
//   KV heads), so the group's heads read each key tile once.
// Per tile of 32 keys: lane j scores key j (q . k over hd from shared memory), the warp takes the tile
// max and exp-sum (shuffles), rescales its running sums, and accumulates p_j * v_j with lane-owned
// output channels (d = lane + 32 i). Masks are AttnArgs': causal over the appended block (row i sees
// slots [0, n_kv - n_q + i]) or non-causal inside the row's segment. Per-element math: ew::AttnLogit
// and ew::ExpShift (native/cpu/elementwise.h).
#include <algorithm>

#include "cpu/elementwise.h"
#include "cuda_common.cuh"

namespace starkv::cuda {
namespace {

constexpr int kWarps = 8;
constexpr int kTile = 32;
constexpr int64_t kSplitKeys = 256;  // keys per split at least (decode)
constexpr int64_t kMaxSplits = 32;

struct DevAttn {
  const float* q;
  int64_t q_row;
  const float* k;
  int64_t k_row, k_head;
  const float* v;
  int64_t v_row, v_head;
  float* out;
  int64_t out_row;
  int64_t n_q, n_kv;
  int group;   // query heads per KV head
  int hpb;     // query heads per block (1: prefill layout; group: decode layout)
  int rpb;     // query rows per block
  int hd;
  float scale;
  const int64_t* segments;  // device, n_segments + 1 (null: causal)
  int n_segments;
  int64_t chunk;  // keys per split (a multiple of kTile) when gridDim.z > 1
  float* part;    // gridDim.z > 1: per (split, row, head) hd sums then m and l; the combine kernel finishes
};

template <int DPL>  // output channels per lane: hd <= 32 * DPL
__global__ void __launch_bounds__(kWarps * 32) AttnKernel(DevAttn a) {
  extern __shared__ float smem[];
  const int hd = a.hd, ks = hd | 1;  // odd key-row stride: lane j reading row j is conflict-free
  float* Ks = smem;
  float* Vs = Ks + kTile * ks;
  float* Qs = Vs + kTile * hd;
  __shared__ int64_t lo_s[kWarps], hi_s[kWarps];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * a.rpb + warp / a.hpb;
  const int head = blockIdx.y * a.hpb + warp % a.hpb;
  const int g = (blockIdx.y * a.hpb) / a.group;
  const bool active = warp < a.rpb * a.hpb && row < a.n_q;
  int64_t lo = 0, hi = 0;
  if (active) {
    if (a.segments) {  // the segment holding `row`: last boundary <= row
      int b = 0, e = a.n_segments;
      while (e - b > 1) {
        const int mid = (b + e) / 2;
        if (a.segments[mid] <= row) b = mid;
        else e = mid;
      }
      lo = a.segments[b];
      hi = a.segments[b + 1];
    } else {
      hi = a.n_kv - a.n_q + row + 1;
    }
    const float* qr = a.q + row * a.q_row + static_cast<int64_t>(head) * hd;
    for (int d = lane; d < hd; d += 32) Qs[warp * hd + d] = qr[d];
  }
  if (lane == 0) {
    lo_s[warp] = active ? lo : INT64_MAX;
    hi_s[warp] = active ? hi : INT64_MIN;
  }
  __syncthreads();
  int64_t blo = INT64_MAX, bhi = INT64_MIN;
  for (int w = 0; w < kWarps; ++w) {
    blo = lo_s[w] < blo ? lo_s[w] : blo;
    bhi = hi_s[w] > bhi ? hi_s[w] : bhi;
  }
  if (gridDim.z > 1) {  // split-KV (flash-decoding): this block's share of the key range
    const int64_t b0 = blo + blockIdx.z * a.chunk;
    bhi = bhi < b0 + a.chunk ? bhi : b0 + a.chunk;
    blo = b0;
  }
  float m = -INFINITY, l = 0.0f, acc[DPL];
#pragma unroll
  for (int i = 0; i < DPL; ++i) acc[i] = 0.0f;
  const float* kb = a.k + static_cast<int64_t>(g) * a.k_head;
  const float* vb = a.v + static_cast<int64_t>(g) * a.v_head;
  for (int64_t t0 = blo; t0 < bhi; t0 += kTile) {
    __syncthreads();  // the previous tile is no longer read
    const int n = bhi - t0 < kTile ? static_cast<int>(bhi - t0) : kTile;
    for (int e = threadIdx.x; e < kTile * hd; e += blockDim.x) {
      const int j = e / hd, d = e - j * hd;
      const bool in = j < n;
      Ks[j * ks + d] = in ? kb[(t0 + j) * a.k_row + d] : 0.0f;
      Vs[j * hd + d] = in ? vb[(t0 + j) * a.v_row + d] : 0.0f;
    }
    __syncthreads();
    if (!active) continue;
    const int64_t s = t0 + lane;
    const bool valid = lane < n && s >= lo && s < hi;
    float score = -INFINITY;
    if (valid) {
      const float* kr = Ks + lane * ks;
      const float* qr = Qs + warp * hd;
      float dot = 0.0f;
      for (int d = 0; d < hd; ++d) dot = fmaf(qr[d], kr[d], dot);
      score = ew::AttnLogit(dot, a.scale);
    }
    const float tmax = WarpMaxF(score);
    if (tmax == -INFINITY) continue;  // warp-uniform: no visible key in this tile
    const float m_new = fmaxf(m, tmax);
    const float alpha = ew::ExpShift(m, m_new);  // 0 while m is -inf
    const float p = valid ? ew::ExpShift(score, m_new) : 0.0f;
    l = l * alpha + WarpSumF(p);
#pragma unroll
    for (int i = 0; i < DPL; ++i) acc[i] *= alpha;
    for (int j = 0; j < n; ++j) {
      const float pj = __shfl_sync(0xffffffffu, p, j);
      if (pj == 0.0f) continue;  // warp-uniform (broadcast value)
      const float* vr = Vs + j * hd;
#pragma unroll
      for (int i = 0; i < DPL; ++i) {
        const int d = lane + 32 * i;
        if (d < hd) acc[i] = fmaf(pj, vr[d], acc[i]);
      }
    }
    m = m_new;
  }
  if (!active) return;
  if (gridDim.z > 1) {
    const int heads = gridDim.y * a.hpb;
    float* pp = a.part + ((blockIdx.z * a.n_q + row) * heads + head) * static_cast<int64_t>(hd + 2);
#pragma unroll
    for (int i = 0; i < DPL; ++i) {
      const int d = lane + 32 * i;
      if (d < hd) pp[d] = acc[i];
    }
    if (lane == 0) {
      pp[hd] = m;
      pp[hd + 1] = l;
    }
    return;
  }
  float* o = a.out + row * a.out_row + static_cast<int64_t>(head) * hd;
  const float inv = l > 0.0f ? 1.0f / l : 0.0f;
#pragma unroll
  for (int i = 0; i < DPL; ++i) {
    const int d = lane + 32 * i;
    if (d < hd) o[d] = acc[i] * inv;
  }
}

// Merges the splits of each (row, head): one warp each; a split that saw no key has m = -inf, l = 0.
__global__ void CombineKernel(DevAttn a, int heads, int splits) {
  const int64_t item = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31, hd = a.hd;
  if (item >= a.n_q * heads) return;
  const int64_t row = item / heads;
  const int head = static_cast<int>(item % heads);
  const int64_t stride = a.n_q * heads * static_cast<int64_t>(hd + 2);
  const float* p0 = a.part + item * (hd + 2);
  float M = -INFINITY;
  for (int z = 0; z < splits; ++z) M = fmaxf(M, p0[z * stride + hd]);
  float L = 0.0f;
  for (int z = 0; z < splits; ++z) {
    const float* p = p0 + z * stride;
    if (p[hd + 1] > 0.0f) L += p[hd + 1] * ew::ExpShift(p[hd], M);
  }
  float* o = a.out + row * a.out_row + static_cast<int64_t>(head) * hd;
  for (int d = lane; d < hd; d += 32) {
    float v = 0.0f;
    for (int z = 0; z < splits; ++z) {
      const float* p = p0 + z * stride;
      if (p[hd + 1] > 0.0f) v = fmaf(p[d], ew::ExpShift(p[hd], M), v);
    }
    o[d] = L > 0.0f ? v / L : 0.0f;
  }
}

template <int DPL>
void Launch(cudaStream_t s, const DevAttn& d, dim3 grid) {
  const size_t smem = sizeof(float) * static_cast<size_t>(kTile * (d.hd | 1) + kTile * d.hd + kWarps * d.hd);
  if (smem > 48 * 1024)
    Check(cudaFuncSetAttribute(AttnKernel<DPL>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)),
          "attention shared memory");
  AttnKernel<DPL><<<grid, kWarps * 32, smem, s>>>(d);
  CheckLaunch("Attention");
}

}  // namespace

int64_t AttentionSplitFloats(const AttnArgs& a) {
  if (a.segments || a.n_q > 16 || a.n_kv < 2 * kSplitKeys) return 0;
  const int64_t splits = std::min<int64_t>(kMaxSplits, a.n_kv / kSplitKeys);
  return splits * a.n_q * a.heads * (a.hd + 2);
}

void LaunchAttention(cudaStream_t s, const AttnArgs& a, const int64_t* dev_segments, float* part) {
  if (a.heads <= 0 || a.kv_heads <= 0 || a.heads % a.kv_heads != 0 || a.hd <= 0)
    throw Error("attention: bad head counts");
  if (a.n_q <= 0) return;
  if (a.hd > 256) throw Error("attention: head_dim " + std::to_string(a.hd) + " > 256 is not supported on CUDA");
  if (a.segments) {
    if (a.n_q != a.n_kv) throw Error("attention: segments need as many queries as keys");
  } else if (a.n_kv < a.n_q) {
    throw Error("attention: fewer key slots than queries");
  }
  DevAttn d{a.q, a.q_row, a.k, a.k_row, a.k_head, a.v, a.v_row, a.v_head, a.out, a.out_row, a.n_q, a.n_kv,
            a.heads / a.kv_heads, 1, kWarps, a.hd, a.scale, a.segments ? dev_segments : nullptr, a.n_segments,
            0, part};
  dim3 grid;
  if (!a.segments && d.group > 1 && d.group <= kWarps && a.n_q <= 16) {  // decode layout
    d.hpb = d.group;
    d.rpb = kWarps / d.group;
    grid = dim3(static_cast<unsigned>((a.n_q + d.rpb - 1) / d.rpb), static_cast<unsigned>(a.kv_heads));
  } else {
    grid = dim3(static_cast<unsigned>((a.n_q + kWarps - 1) / kWarps), static_cast<unsigned>(a.heads));
  }
  if (grid.y > 65535) throw Error("attention: too many heads for one launch");
  // Few rows over many keys (decode): split the key range so that more blocks than KV heads run.
  const int64_t split_floats = AttentionSplitFloats(a);
  if (split_floats > 0 && part) {
    const int64_t splits = split_floats / (a.n_q * a.heads * (a.hd + 2));
    d.chunk = ((a.n_kv + splits - 1) / splits + kTile - 1) / kTile * kTile;
    grid.z = static_cast<unsigned>((a.n_kv + d.chunk - 1) / d.chunk);
  }
  if (a.hd <= 128) Launch<4>(s, d, grid);
  else Launch<8>(s, d, grid);
  if (grid.z > 1) {
    const int64_t items = a.n_q * a.heads;
    CombineKernel<<<static_cast<unsigned>((items + 7) / 8), 256, 0, s>>>(d, a.heads, static_cast<int>(grid.z));
    CheckLaunch("Attention combine");
  }
}

}  // namespace starkv::cuda
