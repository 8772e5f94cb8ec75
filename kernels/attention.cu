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
//
// Blocks of 16 rows or more on a bf16 model (AttnArgs::bf16_weights, as the CPU's bf16 path) go to a
// tensor-core kernel instead (TcAttnKernel below): Q, K and V rounded to bf16, Q K^T and P V as
// nvcuda::wmma 16x16x16 tiles with fp32 accumulators, the softmax in fp32 and the unnormalised
// probabilities of each key tile rounded to bf16 (as torch's flash attention and the CPU's bf16 path).
#include <cuda_bf16.h>
#include <mma.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "cpu/elementwise.h"
#include "cuda_common.cuh"
#include "smem.cuh"

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

// The key slots [lo, hi) query row `row` sees: its segment (the last boundary <= row, by binary search)
// or, causal, every slot up to its own.
__device__ inline void VisibleKeys(const DevAttn& a, int64_t row, int64_t* lo, int64_t* hi) {
  if (a.segments) {
    int b = 0, e = a.n_segments;
    while (e - b > 1) {
      const int mid = (b + e) / 2;
      if (a.segments[mid] <= row) b = mid;
      else e = mid;
    }
    *lo = a.segments[b];
    *hi = a.segments[b + 1];
  } else {
    *lo = 0;
    *hi = a.n_kv - a.n_q + row + 1;
  }
}

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
    VisibleKeys(a, row, &lo, &hi);
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
  Check(AllowDynamicSmem(AttnKernel<DPL>, smem, 2 * kWarps * sizeof(int64_t) /* lo_s, hi_s */), "attention shared memory");
  AttnKernel<DPL><<<grid, kWarps * 32, smem, s>>>(d);
  CheckLaunch("Attention");
}

// ---- tensor-core attention (bf16 operands, fp32 accumulators and softmax) ----
// A block is 4 warps over 64 consecutive query rows of one query head (grid: row tiles x heads); each
// warp owns 16 rows. Q's 16 x hdp tile sits in wmma fragments (hdp = hd rounded up to 16, at most 128;
// the padding is zeros). Per tile of 64 keys the block copies K and V (bf16 copies made once per call by
// TcKvKernel) into shared memory, then each warp whose rows see some key of the tile: S = Q K^T (4
// column blocks of 16 keys, fp32) to shared memory; lanes (row r = lane & 15, half = lane >> 4 of the 64 columns) mask, scale, take the row max
// and exp-sum with the partner lane (lane ^ 16), rescale the row's fp32 output accumulator O in shared
// memory and write P as bf16 over S; then O += P V (accumulator tiles loaded from O, 4 key steps,
// stored back). At the end O / l goes out. Shared memory: 2 * 64 * (hdp + 8) bf16 for K and V, per warp
// 16 x 68 floats for S (P aliases it) and 16 x (hdp + 4) floats for O: 84 KB at hdp = 128 (sm_86/89
// allow 99 KB), 56 KB at 80.
namespace wmma = nvcuda::wmma;
using Bf16 = __nv_bfloat16;
constexpr int kTcWarps = 4, kTcRows = 16 * kTcWarps, kTcKeys = 64, kTcMaxSteps = 8;
constexpr int kTcLdS = kTcKeys + 4;  // floats (store_matrix_sync: a multiple of 4)
constexpr int kTcLdP = kTcKeys + 8;  // bf16 (load_matrix_sync: a multiple of 8)

constexpr int TcPaddedHd(int hd) { return (hd + 15) / 16 * 16; }
constexpr size_t TcSmemBytes(int hdp) {
  const size_t ld16 = hdp + 8, ldo = hdp + 4;
  return 2 * kTcKeys * ld16 * sizeof(Bf16) + kTcWarps * 16 * (kTcLdS + ldo) * sizeof(float) +
         2 * kTcWarps * sizeof(int64_t);
}
// sm_86 and sm_89 allow 99 KB of shared memory per block (opted in), sm_80 163 KB, sm_90 227 KB.
static_assert(TcSmemBytes(128) <= 99 * 1024, "tensor-core attention: shared memory above sm_86/89's limit");

// K and V of every KV head as bf16, [kv_heads][n_kv][hdp], zero-padded: converted once per call, so
// that the attention blocks (heads / kv_heads x row tiles of them read each key) load 16-byte vectors.
__global__ void TcKvKernel(DevAttn a, int hdp, int64_t total, Bf16* kb, Bf16* vb) {
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int d = static_cast<int>(e % hdp);
    const int64_t gs = e / hdp, s = gs % a.n_kv, g = gs / a.n_kv;
    const bool in = d < a.hd;
    kb[e] = __float2bfloat16_rn(in ? a.k[g * a.k_head + s * a.k_row + d] : 0.0f);
    vb[e] = __float2bfloat16_rn(in ? a.v[g * a.v_head + s * a.v_row + d] : 0.0f);
  }
}

__global__ void __launch_bounds__(kTcWarps * 32) TcAttnKernel(DevAttn a, int hdp, const Bf16* kb16, const Bf16* vb16) {
  extern __shared__ __align__(128) float tc_smem[];
  const int hd = a.hd, ld16 = hdp + 8, ldo = hdp + 4, steps = hdp / 16;
  Bf16* Ks = reinterpret_cast<Bf16*>(tc_smem);
  Bf16* Vs = Ks + kTcKeys * ld16;
  float* Ss = reinterpret_cast<float*>(Vs + kTcKeys * ld16);
  float* Os = Ss + kTcWarps * 16 * kTcLdS;
  int64_t* range = reinterpret_cast<int64_t*>(Os + kTcWarps * 16 * ldo);  // [warp][lo, hi]
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, r = lane & 15, half = lane >> 4;
  const int64_t base = static_cast<int64_t>(blockIdx.x) * kTcRows, row = base + warp * 16 + r;
  const int head = blockIdx.y, g = head / a.group;
  float* Sw = Ss + warp * 16 * kTcLdS;
  Bf16* Pw = reinterpret_cast<Bf16*>(Sw);
  float* Ow = Os + warp * 16 * ldo;
  // The keys row `row` sees: [lo, hi) (empty for rows past n_q).
  int64_t lo = INT64_MAX, hi = INT64_MIN;
  if (row < a.n_q) VisibleKeys(a, row, &lo, &hi);
  int64_t wlo = lo, whi = hi;
  for (int o = 8; o > 0; o >>= 1) {  // over the 16 rows (both halves hold the same values)
    const int64_t ol = __shfl_xor_sync(0xffffffffu, wlo, o), oh = __shfl_xor_sync(0xffffffffu, whi, o);
    wlo = ol < wlo ? ol : wlo;
    whi = oh > whi ? oh : whi;
  }
  if (lane == 0) {
    range[2 * warp] = wlo;
    range[2 * warp + 1] = whi;
  }
  // Q rows of the block to bf16 (in K's space), O to zero.
  for (int e = threadIdx.x; e < kTcRows * hdp; e += blockDim.x) {
    const int j = e / hdp, d = e - j * hdp;
    const int64_t qr = base + j;
    const float x = qr < a.n_q && d < hd ? a.q[qr * a.q_row + static_cast<int64_t>(head) * hd + d] : 0.0f;
    Ks[j * ld16 + d] = __float2bfloat16_rn(x);
  }
  for (int e = lane; e < 16 * ldo; e += 32) Ow[e] = 0.0f;
  __syncthreads();
  wmma::fragment<wmma::matrix_a, 16, 16, 16, Bf16, wmma::row_major> qf[kTcMaxSteps];
#pragma unroll
  for (int s = 0; s < kTcMaxSteps; ++s)
    if (s < steps) wmma::load_matrix_sync(qf[s], Ks + warp * 16 * ld16 + s * 16, ld16);
  int64_t blo = INT64_MAX, bhi = INT64_MIN;
  for (int w = 0; w < kTcWarps; ++w) {
    blo = range[2 * w] < blo ? range[2 * w] : blo;
    bhi = range[2 * w + 1] > bhi ? range[2 * w + 1] : bhi;
  }
  const Bf16* kh = kb16 + static_cast<int64_t>(g) * a.n_kv * hdp;
  const Bf16* vh = vb16 + static_cast<int64_t>(g) * a.n_kv * hdp;
  const int vec = hdp / 8;  // 16-byte vectors of 8 bf16 per key row
  float m = -INFINITY, l = 0.0f;
  for (int64_t t0 = blo; t0 < bhi; t0 += kTcKeys) {
    __syncthreads();  // Q's fragments are loaded / the previous tile is no longer read
    const int n = bhi - t0 < kTcKeys ? static_cast<int>(bhi - t0) : kTcKeys;
    for (int e = threadIdx.x; e < kTcKeys * vec; e += blockDim.x) {
      const int j = e / vec, c = e - j * vec;
      float4 kv = {0.0f, 0.0f, 0.0f, 0.0f}, vv = kv;  // 8 bf16 of bits each (rows past n: zeros)
      if (j < n) {
        kv = *reinterpret_cast<const float4*>(kh + (t0 + j) * hdp + c * 8);
        vv = *reinterpret_cast<const float4*>(vh + (t0 + j) * hdp + c * 8);
      }
      *reinterpret_cast<float4*>(Ks + j * ld16 + c * 8) = kv;
      *reinterpret_cast<float4*>(Vs + j * ld16 + c * 8) = vv;
    }
    __syncthreads();
    if (t0 >= whi || t0 + n <= wlo) continue;  // warp-uniform: none of this warp's rows sees the tile
    for (int nb = 0; nb < kTcKeys / 16; ++nb) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment(acc, 0.0f);
#pragma unroll
      for (int s = 0; s < kTcMaxSteps; ++s) {
        if (s >= steps) break;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, Bf16, wmma::col_major> kf;
        wmma::load_matrix_sync(kf, Ks + nb * 16 * ld16 + s * 16, ld16);
        wmma::mma_sync(acc, qf[s], kf, acc);
      }
      wmma::store_matrix_sync(Sw + nb * 16, acc, kTcLdS, wmma::mem_row_major);
    }
    __syncwarp();
    // Row r, columns half*32 + c, visited in a per-row rotation so that the 32 lanes hit 32 banks.
    float sv[32], mx = -INFINITY;
#pragma unroll
    for (int i = 0; i < 32; ++i) {
      const int c = half * 32 + ((i + r + 16 * half) & 31);
      const int64_t t = t0 + c;
      sv[i] = c < n && t >= lo && t < hi ? ew::AttnLogit(Sw[r * kTcLdS + c], a.scale) : -INFINITY;
      mx = fmaxf(mx, sv[i]);
    }
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 16));
    const float m_new = fmaxf(m, mx);
    const float alpha = m_new == -INFINITY ? 1.0f : ew::ExpShift(m, m_new);  // 0 while m is -inf
    float sum = 0.0f;
    __syncwarp();  // every lane has read S before P overwrites it
#pragma unroll
    for (int i = 0; i < 32; ++i) {
      const int c = half * 32 + ((i + r + 16 * half) & 31);
      const float p = sv[i] == -INFINITY ? 0.0f : ew::ExpShift(sv[i], m_new);
      sum += p;
      Pw[r * kTcLdP + c] = __float2bfloat16_rn(p);
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 16);
    l = l * alpha + sum;
    m = m_new;
    if (alpha != 1.0f)
      for (int d = half * (hdp / 2); d < (half + 1) * (hdp / 2); ++d) Ow[r * ldo + d] *= alpha;
    __syncwarp();
    for (int nb = 0; nb < steps; ++nb) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::load_matrix_sync(acc, Ow + nb * 16, ldo, wmma::mem_row_major);
#pragma unroll
      for (int s = 0; s < kTcKeys / 16; ++s) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, Bf16, wmma::row_major> pf;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, Bf16, wmma::row_major> vf;
        wmma::load_matrix_sync(pf, Pw + s * 16, kTcLdP);
        wmma::load_matrix_sync(vf, Vs + s * 16 * ld16 + nb * 16, ld16);
        wmma::mma_sync(acc, pf, vf, acc);
      }
      __syncwarp();  // every lane has loaded this O tile before it is stored
      wmma::store_matrix_sync(Ow + nb * 16, acc, ldo, wmma::mem_row_major);
    }
  }
  __syncwarp();
  if (row >= a.n_q) return;
  const float inv = l > 0.0f ? 1.0f / l : 0.0f;
  float* o = a.out + row * a.out_row + static_cast<int64_t>(head) * hd;
  for (int d = half; d < hd; d += 2) o[d] = Ow[r * ldo + d] * inv;
}

// STARKV_CUDA_ATTN=fp32 keeps bf16 models on the fp32 kernel (to compare the two on a GPU).
bool TcAttnDisabled() {
  static const bool off = [] {
    const char* v = std::getenv("STARKV_CUDA_ATTN");
    return v && std::strcmp(v, "fp32") == 0;
  }();
  return off;
}

// Blocks of 16 rows or more on a bf16 model with head_dim <= 128 (every Qwen2-VL / 2.5-VL head) take
// the tensor-core kernel; decode rows (which stream the cache once) and larger heads stay fp32.
bool UseTc(const AttnArgs& a) { return a.bf16_weights && a.n_q >= 16 && a.hd <= 128 && !TcAttnDisabled(); }

void LaunchTc(cudaStream_t s, const DevAttn& d, int heads, int kv_heads, void* scratch) {
  const int hdp = TcPaddedHd(d.hd);
  const int64_t total = static_cast<int64_t>(kv_heads) * d.n_kv * hdp;
  Bf16* kb = static_cast<Bf16*>(scratch);
  Bf16* vb = kb + total;
  TcKvKernel<<<Blocks(total, 256), 256, 0, s>>>(d, hdp, total, kb, vb);
  CheckLaunch("Attention (bf16 keys and values)");
  const size_t smem = TcSmemBytes(hdp);
  Check(AllowDynamicSmem(TcAttnKernel, smem, 0), "attention (tensor cores) shared memory");
  const dim3 grid(static_cast<unsigned>((d.n_q + kTcRows - 1) / kTcRows), static_cast<unsigned>(heads));
  TcAttnKernel<<<grid, kTcWarps * 32, smem, s>>>(d, hdp, kb, vb);
  CheckLaunch("Attention (tensor cores)");
}

int64_t SplitFloats(const AttnArgs& a) {
  if (UseTc(a) || a.segments || a.n_q > 16 || a.n_kv < 2 * kSplitKeys) return 0;
  const int64_t splits = std::min<int64_t>(kMaxSplits, a.n_kv / kSplitKeys);
  return splits * a.n_q * a.heads * (a.hd + 2);
}

}  // namespace

int64_t AttentionScratchBytes(const AttnArgs& a) {
  if (UseTc(a)) return 2 * static_cast<int64_t>(a.kv_heads) * a.n_kv * TcPaddedHd(a.hd) * static_cast<int64_t>(sizeof(Bf16));
  return SplitFloats(a) * static_cast<int64_t>(sizeof(float));
}

void LaunchAttention(cudaStream_t s, const AttnArgs& a, const int64_t* dev_segments, void* scratch) {
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
            0, static_cast<float*>(scratch)};
  if (UseTc(a)) {
    if (a.heads > 65535) throw Error("attention: too many heads for one launch");
    if (!scratch) throw Error("attention: the tensor-core path needs AttentionScratchBytes() of scratch");
    LaunchTc(s, d, a.heads, a.kv_heads, scratch);
    return;
  }
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
  const int64_t split_floats = SplitFloats(a);
  if (split_floats > 0 && scratch) {
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
