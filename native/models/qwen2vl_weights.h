// Views of every Qwen2-VL / Qwen2.5-VL tensor (normalised names), bound and shape-checked at load.
#pragma once

#include <vector>

#include "core/tensor.h"
#include "core/weight_store.h"
#include "models/qwen2vl_config.h"

namespace starkv::qwen2vl {

struct TextLayerWeights {
  Tensor in_norm, q_w, q_b, k_w, k_b, v_w, v_b, o_w, post_norm, gate_w, up_w, down_w;
};

struct TextWeights {
  Tensor embed;    // [V, D]
  Tensor norm;     // [D]
  Tensor lm_head;  // [V, D] (= embed when tied)
  std::vector<TextLayerWeights> layers;
};

struct VisionBlockWeights {
  Tensor norm1_w, norm1_b, norm2_w, norm2_b;  // biases only with LayerNorm (QV2)
  Tensor qkv_w, qkv_b, proj_w, proj_b;
  // QV2: fc1 (up_w/up_b) and fc2 (down_w/down_b); QV25: gate, up, down (all with bias)
  Tensor gate_w, gate_b, up_w, up_b, down_w, down_b;
};

struct VisionWeights {
  Tensor patch_embed;  // [Cv, C, T, P, P]
  std::vector<VisionBlockWeights> blocks;
  Tensor ln_q_w, ln_q_b, mlp0_w, mlp0_b, mlp2_w, mlp2_b;
};

TextWeights BindText(const WeightStore& ws, const Config& c);
VisionWeights BindVision(const WeightStore& ws, const Config& c);

}  // namespace starkv::qwen2vl
