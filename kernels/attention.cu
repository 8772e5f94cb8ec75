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
#include "cpu/elementwise.h"
#include "cuda_common.cuh"

namespace starkv::cuda {
namespace {

constexpr int kWarps = 8;
constexpr int kTile = 32;

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
  float* o = a.out + row * a.out_row + static_cast<int64_t>(head) * hd;
  const float inv = l > 0.0f ? 1.0f / l : 0.0f;
#pragma unroll
  for (int i = 0; i < DPL; ++i) {
    const int d = lane + 32 * i;
    if (d < hd) o[d] = acc[i] * inv;
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

void LaunchAttention(cudaStream_t s, const AttnArgs& a, const int64_t* dev_segments) {
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
            a.heads / a.kv_heads, 1, kWarps, a.hd, a.scale, a.segments ? dev_segments : nullptr, a.n_segments};
  dim3 grid;
  if (!a.segments && d.group > 1 && d.group <= kWarps && a.n_q <= 16) {  // decode layout
    d.hpb = d.group;
    d.rpb = kWarps / d.group;
    grid = dim3(static_cast<unsigned>((a.n_q + d.rpb - 1) / d.rpb), static_cast<unsigned>(a.kv_heads));
  } else {
    grid = dim3(static_cast<unsigned>((a.n_q + kWarps - 1) / kWarps), static_cast<unsigned>(a.heads));
  }
  if (grid.y > 65535) throw Error("attention: too many heads for one launch");
  if (a.hd <= 128) Launch<4>(s, d, grid);
  else Launch<8>(s, d, grid);
}

}  // namespace starkv::cuda
