// Decoder layer (spec 5.4): RMSNorm, q/k/v with bias, M-RoPE, GQA attention over the KV store,
// o_proj, RMSNorm, SwiGLU MLP; residual adds in fp32.
#include "models/decoder.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "models/rope_index.h"

namespace starkv::qwen2vl {

void TextDecoder::Embed(const int32_t* ids, int64_t n, float* out) { be_.GatherRows(w_.embed, ids, n, out); }

void TextDecoder::FinalNorm(const float* h, int64_t n, float* y) {
  be_.RmsNorm(h, n, c_.hidden, w_.norm, c_.rms_eps, y);
}

void TextDecoder::Logits(const float* y, int64_t n, float* logits) { be_.MatMul(y, n, w_.lm_head, nullptr, logits); }

void TextDecoder::Forward(float* h, int64_t n, const int32_t* pos_t, const int32_t* pos_h, const int32_t* pos_w,
                          KvStore& kv, const TraceRows& tr, const std::atomic<bool>* cancel,
                          LayerObserver* observer) {
  const int64_t hd = c_.head_dim;
  std::vector<float> hcos(static_cast<size_t>(n * hd / 2)), hsin(hcos.size());
  MropeTables(c_, pos_t, pos_h, pos_w, n, hcos.data(), hsin.data());
  Buffer cos = be_.Alloc(MemCategory::Activations, n * hd / 2);
  Buffer sin = be_.Alloc(MemCategory::Activations, n * hd / 2);
  be_.Upload(hcos.data(), sizeof(float) * hcos.size(), cos.f());
  be_.Upload(hsin.data(), sizeof(float) * hsin.size(), sin.f());
  const int64_t first_token = kv.tokens;
  // On cancel (or any error) between layers, the layers that already appended this block drop it
  // again, so the store never holds a token in some layers only.
  std::vector<int64_t> before(static_cast<size_t>(c_.layers));
  for (int l = 0; l < c_.layers; ++l) before[l] = kv.Length(l);
  try {
    ForwardLayers(h, n, cos.f(), sin.f(), kv, tr, cancel, observer, first_token);
  } catch (...) {
    for (int l = 0; l < c_.layers; ++l) kv.SetLength(l, before[l]);
    throw;
  }
  kv.tokens += n;
}

void TextDecoder::ForwardLayers(float* h, int64_t n, const float* cosp, const float* sinp, KvStore& kv,
                                const TraceRows& tr, const std::atomic<bool>* cancel, LayerObserver* observer,
                                int64_t first_token) {
  const int64_t D = c_.hidden, I = c_.intermediate, hd = c_.head_dim, H = c_.heads, KV = c_.kv_heads;
  const int64_t qd = H * hd, kd = KV * hd;
  Buffer a = be_.Alloc(MemCategory::Activations, n * std::max(D, qd));
  Buffer q = be_.Alloc(MemCategory::Activations, n * qd);
  Buffer k = be_.Alloc(MemCategory::Activations, n * kd);
  Buffer v = be_.Alloc(MemCategory::Activations, n * kd);
  Buffer o = be_.Alloc(MemCategory::Activations, n * D);
  Buffer g = be_.Alloc(MemCategory::Activations, n * I);
  Buffer u = be_.Alloc(MemCategory::Activations, n * I);
  Trace* trace = tr.trace;
  const int64_t L = tr.total;
  // What the observer reads, copied out of the backend each layer (rows fixed for the block).
  const LayerObserver::Rows need = observer ? observer->Needs(n, first_token) : LayerObserver::Rows{};
  const int64_t norm_rows = need.norm_hi - need.norm_lo;
  if (observer && (need.q_from < 0 || need.q_from > n || need.norm_lo < 0 || norm_rows < 0 || need.norm_hi > n))
    throw Error("decoder: the layer observer asked for rows outside the block of " + std::to_string(n));
  std::vector<float> obs_q(observer ? static_cast<size_t>((n - need.q_from) * qd) : 0);
  std::vector<float> obs_norms(static_cast<size_t>(norm_rows));
  Buffer norms = norm_rows > 0 ? be_.Alloc(MemCategory::Activations, norm_rows) : Buffer();
  // Head-major trace arrays [heads, L, hd] from row-major [n, heads*hd].
  auto put_heads = [&](const std::string& name, const float* src, int64_t heads) {
    std::vector<float> host(static_cast<size_t>(n * heads * hd));
    be_.Download(src, sizeof(float) * host.size(), host.data());
    float* dst = trace->Get(name, {heads, L, hd});
    for (int64_t hh = 0; hh < heads; ++hh)
      for (int64_t i = 0; i < n; ++i)
        std::copy(host.data() + (i * heads + hh) * hd, host.data() + (i * heads + hh + 1) * hd,
                  dst + (hh * L + tr.row0 + i) * hd);
  };
  auto put_rows = [&](const std::string& name, const float* src, int64_t width) {
    be_.Download(src, sizeof(float) * n * width, trace->Get(name, {L, width}) + tr.row0 * width);
  };
  for (int l = 0; l < c_.layers; ++l) {
    if (cancel && cancel->load(std::memory_order_relaxed)) throw Cancelled();
    const TextLayerWeights& W = w_.layers[l];
    const std::string pre = "text.layer." + std::to_string(l) + ".";
    be_.RmsNorm(h, n, D, W.in_norm, c_.rms_eps, a.f());
    be_.MatMul(a.f(), n, W.q_w, &W.q_b, q.f());
    be_.MatMul(a.f(), n, W.k_w, &W.k_b, k.f());
    be_.MatMul(a.f(), n, W.v_w, &W.v_b, v.f());
    be_.Rotary(q.f(), n, qd, static_cast<int>(H), static_cast<int>(hd), cosp, sinp);
    be_.Rotary(k.f(), n, kd, static_cast<int>(KV), static_cast<int>(hd), cosp, sinp);
    if (observer) {
      if (norm_rows > 0) {
        be_.RowNorms(a.f() + need.norm_lo * D, norm_rows, D, norms.f());
        be_.Download(norms.f(), sizeof(float) * obs_norms.size(), obs_norms.data());
      }
      be_.Download(q.f() + need.q_from * qd, sizeof(float) * obs_q.size(), obs_q.data());
      observer->OnLayer(l, obs_q.data(), obs_norms.data(), need, n, first_token);
    }
    if (trace) {
      put_heads(pre + "q_rot", q.f(), H);
      put_heads(pre + "k_rot", k.f(), KV);
      put_heads(pre + "v", v.f(), KV);
    }
    kv.Append(l, k.f(), v.f(), kd, n, first_token);
    AttnArgs at;
    at.q = q.f();
    at.q_row = qd;
    at.k = kv.Keys(l);
    at.k_row = hd;
    at.k_head = kv.KHeadStride();
    at.v = kv.Values(l);
    at.v_row = hd;
    at.v_head = kv.KHeadStride();
    at.out = a.f();
    at.out_row = qd;
    at.n_q = n;
    at.n_kv = kv.Length(l);
    at.heads = static_cast<int>(H);
    at.kv_heads = static_cast<int>(KV);
    at.hd = static_cast<int>(hd);
    at.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
    at.bf16_weights = W.o_w.dtype == DType::BF16;
    be_.Attention(at);
    if (trace) put_rows(pre + "attn_out", a.f(), qd);
    be_.MatMul(a.f(), n, W.o_w, nullptr, o.f());
    be_.Add(h, o.f(), n * D);
    be_.RmsNorm(h, n, D, W.post_norm, c_.rms_eps, a.f());
    be_.MatMul(a.f(), n, W.gate_w, nullptr, g.f());
    be_.MatMul(a.f(), n, W.up_w, nullptr, u.f());
    be_.GatedAct(Act::Silu, g.f(), u.f(), n * I, g.f());
    be_.MatMul(g.f(), n, W.down_w, nullptr, o.f());
    be_.Add(h, o.f(), n * D);
    if (trace) put_rows(pre + "output", h, D);
  }
}

}  // namespace starkv::qwen2vl
