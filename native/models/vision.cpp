// Vision tower forward (spec 4.1-4.5).
#include "models/vision.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>
#include <string>

#include "core/error.h"

namespace starkv::qwen2vl {
namespace {

void CheckCancel(const std::atomic<bool>* cancel) {
  if (cancel && cancel->load(std::memory_order_relaxed)) throw Cancelled();
}

}  // namespace

Buffer VisionTower::Encode(const float* pixels, int64_t rows, const std::vector<ImageGrid>& grids, Trace* trace,
                           const std::atomic<bool>* cancel) {
  const VisionConfig& v = c_.vision;
  const VisionLayout L = MakeVisionLayout(c_, grids);
  if (rows != L.patches)
    throw Error("pixels hold " + std::to_string(rows) + " patch rows but the image grids need " +
                std::to_string(L.patches));
  const int64_t N = L.patches, Cv = v.width, unit = v.merge_unit(), Nm = N / unit, D = v.out_hidden;
  if (N == 0) return be_.Alloc(MemCategory::Activations, 0);
  Buffer x = be_.Alloc(MemCategory::Activations, N * Cv);
  {
    Buffer px = be_.Alloc(MemCategory::Activations, N * v.patch_dim());
    be_.Upload(pixels, sizeof(float) * static_cast<size_t>(N * v.patch_dim()), px.f());
    Buffer e = be_.Alloc(MemCategory::Activations, N * Cv);
    be_.MatMul(px.f(), N, w_.patch_embed, nullptr, e.f());
    if (trace) be_.Download(e.f(), sizeof(float) * N * Cv, trace->Put("vision.patch_embed", {N, Cv}));
    // Window permutation: whole merge groups (unit rows) move to their processing position.
    std::vector<int64_t> rows;
    if (!L.window_index.empty()) {
      rows.resize(static_cast<size_t>(N));
      for (int64_t p = 0; p < N; ++p) rows[p] = L.window_index[p / unit] * unit + p % unit;
    }
    be_.CopyRows(e.f(), Cv, rows.empty() ? nullptr : rows.data(), x.f(), Cv, nullptr, N, Cv);
  }
  Buffer cos = be_.Alloc(MemCategory::Activations, static_cast<int64_t>(L.cos.size()));
  Buffer sin = be_.Alloc(MemCategory::Activations, static_cast<int64_t>(L.sin.size()));
  be_.Upload(L.cos.data(), sizeof(float) * L.cos.size(), cos.f());
  be_.Upload(L.sin.data(), sizeof(float) * L.sin.size(), sin.f());
  {
    // Scratch shared by all blocks (allocated once: large, and page faults are not free).
    const int64_t Iv = v.mlp_width;
    BlockScratch s{be_.Alloc(MemCategory::Activations, N * Cv), be_.Alloc(MemCategory::Activations, N * std::max(3 * Cv, 2 * Iv)),
                   be_.Alloc(MemCategory::Activations, N * Cv)};
    for (int j = 0; j < v.depth; ++j) {
      CheckCancel(cancel);
      Block(j, x.f(), N, L, cos.f(), sin.f(), s, trace);
    }
  }
  CheckCancel(cancel);
  // Merger: norm per patch, then unit consecutive rows form one merged token.
  Buffer z = be_.Alloc(MemCategory::Activations, N * Cv);
  if (v.layernorm) be_.LayerNorm(x.f(), N, Cv, w_.ln_q_w, w_.ln_q_b, v.eps, z.f());
  else be_.RmsNorm(x.f(), N, Cv, w_.ln_q_w, v.eps, z.f());
  x.Release();
  Buffer hmid = be_.Alloc(MemCategory::Activations, Nm * Cv * unit);
  be_.MatMul(z.f(), Nm, w_.mlp0_w, &w_.mlp0_b, hmid.f());
  z.Release();
  be_.Activation(Act::GeluErf, hmid.f(), Nm * Cv * unit);
  Buffer y = be_.Alloc(MemCategory::Activations, Nm * D);
  be_.MatMul(hmid.f(), Nm, w_.mlp2_w, &w_.mlp2_b, y.f());
  if (trace) be_.Download(y.f(), sizeof(float) * Nm * D, trace->Put("vision.merger_out", {Nm, D}));
  if (L.window_index.empty()) {
    if (trace) be_.Download(y.f(), sizeof(float) * Nm * D, trace->Put("vision.output", {Nm, D}));
    return y;
  }
  Buffer out = be_.Alloc(MemCategory::Activations, Nm * D);
  be_.CopyRows(y.f(), D, nullptr, out.f(), D, L.window_index.data(), Nm, D);  // un-permute (scatter)
  if (trace) be_.Download(out.f(), sizeof(float) * Nm * D, trace->Put("vision.output", {Nm, D}));
  return out;
}

void VisionTower::Block(int j, float* x, int64_t n, const VisionLayout& L, const float* cos, const float* sin,
                        BlockScratch& s, Trace* trace) {
  const VisionConfig& v = c_.vision;
  const VisionBlockWeights& b = w_.blocks[j];
  const int64_t Cv = v.width, Iv = v.mlp_width;
  const int heads = v.num_heads, hdv = v.head_dim();
  float* a = s.a.f();
  float* o = s.o.f();
  auto norm = [&](const Tensor& w, const Tensor& bias, float* dst) {
    if (v.layernorm) be_.LayerNorm(x, n, Cv, w, bias, v.eps, dst);
    else be_.RmsNorm(x, n, Cv, w, v.eps, dst);
  };
  // Attention.
  norm(b.norm1_w, b.norm1_b, a);
  {
    float* qkv = s.big.f();
    be_.MatMul(a, n, b.qkv_w, &b.qkv_b, qkv);
    be_.Rotary(qkv, n, 3 * Cv, heads, hdv, cos, sin);       // q
    be_.Rotary(qkv + Cv, n, 3 * Cv, heads, hdv, cos, sin);  // k
    const bool full = L.window_index.empty() ||
                      std::find(v.fullatt_block_indexes.begin(), v.fullatt_block_indexes.end(), j) !=
                          v.fullatt_block_indexes.end();
    const std::vector<int64_t>& segs = full ? L.cu_seqlens : L.cu_windows;
    AttnArgs at;
    at.q = qkv;
    at.q_row = 3 * Cv;
    at.k = qkv + Cv;
    at.k_row = 3 * Cv;
    at.k_head = hdv;
    at.v = qkv + 2 * Cv;
    at.v_row = 3 * Cv;
    at.v_head = hdv;
    at.out = a;
    at.out_row = Cv;
    at.n_q = at.n_kv = n;
    at.heads = at.kv_heads = heads;
    at.hd = hdv;
    at.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hdv)));
    at.segments = segs.data();
    at.n_segments = static_cast<int>(segs.size()) - 1;
    at.bf16_weights = b.proj_w.dtype == DType::BF16;
    be_.Attention(at);
  }
  be_.MatMul(a, n, b.proj_w, &b.proj_b, o);
  be_.Add(x, o, n * Cv);
  // MLP.
  norm(b.norm2_w, b.norm2_b, a);
  float* up = s.big.f();
  be_.MatMul(a, n, b.up_w, &b.up_b, up);
  if (c_.arch == Arch::Qwen25VL) {
    float* gate = s.big.f() + n * Iv;
    be_.MatMul(a, n, b.gate_w, &b.gate_b, gate);
    be_.GatedAct(v.act, gate, up, n * Iv, up);
  } else {
    be_.Activation(v.act, up, n * Iv);
  }
  be_.MatMul(up, n, b.down_w, &b.down_b, o);
  be_.Add(x, o, n * Cv);
  if (trace) be_.Download(x, sizeof(float) * n * Cv, trace->Put("vision.block." + std::to_string(j), {n, Cv}));
}

}  // namespace starkv::qwen2vl
