// Tensor names of the normalised layout (model.language_model.*, model.visual.*, lm_head.weight).
#include "models/qwen2vl_weights.h"

#include <string>

namespace starkv::qwen2vl {

TextWeights BindText(const WeightStore& ws, const Config& c) {
  const int64_t D = c.hidden, I = c.intermediate, hd = c.head_dim, H = c.heads, KV = c.kv_heads, V = c.vocab;
  const std::string T = "model.language_model.";
  TextWeights w;
  w.embed = ws.Get(T + "embed_tokens.weight", {V, D});
  w.norm = ws.Get(T + "norm.weight", {D});
  w.lm_head = c.tie_embeddings ? w.embed : ws.Get("lm_head.weight", {V, D});
  for (int i = 0; i < c.layers; ++i) {
    const std::string p = T + "layers." + std::to_string(i) + ".";
    TextLayerWeights L;
    L.in_norm = ws.Get(p + "input_layernorm.weight", {D});
    L.post_norm = ws.Get(p + "post_attention_layernorm.weight", {D});
    L.q_w = ws.Get(p + "self_attn.q_proj.weight", {H * hd, D});
    L.q_b = ws.Get(p + "self_attn.q_proj.bias", {H * hd});
    L.k_w = ws.Get(p + "self_attn.k_proj.weight", {KV * hd, D});
    L.k_b = ws.Get(p + "self_attn.k_proj.bias", {KV * hd});
    L.v_w = ws.Get(p + "self_attn.v_proj.weight", {KV * hd, D});
    L.v_b = ws.Get(p + "self_attn.v_proj.bias", {KV * hd});
    L.o_w = ws.Get(p + "self_attn.o_proj.weight", {D, H * hd});
    L.gate_w = ws.Get(p + "mlp.gate_proj.weight", {I, D});
    L.up_w = ws.Get(p + "mlp.up_proj.weight", {I, D});
    L.down_w = ws.Get(p + "mlp.down_proj.weight", {D, I});
    w.layers.push_back(L);
  }
  return w;
}

VisionWeights BindVision(const WeightStore& ws, const Config& c) {
  const VisionConfig& v = c.vision;
  const int64_t Cv = v.width, Iv = v.mlp_width, ps = v.patch_size;
  const bool ln = v.layernorm;
  const std::string P = "model.visual.";
  VisionWeights w;
  w.patch_embed = ws.Get(P + "patch_embed.proj.weight", {Cv, v.in_channels, v.temporal_patch_size, ps, ps});
  for (int j = 0; j < v.depth; ++j) {
    const std::string p = P + "blocks." + std::to_string(j) + ".";
    VisionBlockWeights b;
    b.norm1_w = ws.Get(p + "norm1.weight", {Cv});
    b.norm2_w = ws.Get(p + "norm2.weight", {Cv});
    if (ln) {
      b.norm1_b = ws.Get(p + "norm1.bias", {Cv});
      b.norm2_b = ws.Get(p + "norm2.bias", {Cv});
    }
    b.qkv_w = ws.Get(p + "attn.qkv.weight", {3 * Cv, Cv});
    b.qkv_b = ws.Get(p + "attn.qkv.bias", {3 * Cv});
    b.proj_w = ws.Get(p + "attn.proj.weight", {Cv, Cv});
    b.proj_b = ws.Get(p + "attn.proj.bias", {Cv});
    if (c.arch == Arch::Qwen25VL) {
      b.gate_w = ws.Get(p + "mlp.gate_proj.weight", {Iv, Cv});
      b.gate_b = ws.Get(p + "mlp.gate_proj.bias", {Iv});
      b.up_w = ws.Get(p + "mlp.up_proj.weight", {Iv, Cv});
      b.up_b = ws.Get(p + "mlp.up_proj.bias", {Iv});
      b.down_w = ws.Get(p + "mlp.down_proj.weight", {Cv, Iv});
      b.down_b = ws.Get(p + "mlp.down_proj.bias", {Cv});
    } else {
      b.up_w = ws.Get(p + "mlp.fc1.weight", {Iv, Cv});
      b.up_b = ws.Get(p + "mlp.fc1.bias", {Iv});
      b.down_w = ws.Get(p + "mlp.fc2.weight", {Cv, Iv});
      b.down_b = ws.Get(p + "mlp.fc2.bias", {Cv});
    }
    w.blocks.push_back(b);
  }
  const int64_t mw = Cv * v.merge_unit();
  w.ln_q_w = ws.Get(P + "merger.ln_q.weight", {Cv});
  if (ln) w.ln_q_b = ws.Get(P + "merger.ln_q.bias", {Cv});
  w.mlp0_w = ws.Get(P + "merger.mlp.0.weight", {mw, mw});
  w.mlp0_b = ws.Get(P + "merger.mlp.0.bias", {mw});
  w.mlp2_w = ws.Get(P + "merger.mlp.2.weight", {c.vision.out_hidden, mw});
  w.mlp2_b = ws.Get(P + "merger.mlp.2.bias", {c.vision.out_hidden});
  return w;
}

}  // namespace starkv::qwen2vl
