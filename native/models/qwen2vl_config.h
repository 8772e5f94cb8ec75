// The resolved Qwen2-VL / Qwen2.5-VL configuration, as handed over by the TypeScript side (which
// parses config.json). Native never parses JSON; it re-validates what it relies on.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/backend.h"

namespace starkv::qwen2vl {

enum class Arch { Qwen2VL, Qwen25VL };

struct VisionConfig {
  int depth = 0;
  int width = 0;       // Cv (QV2 embed_dim, QV25 hidden_size)
  int num_heads = 0;
  int mlp_width = 0;   // QV2 embed_dim*mlp_ratio, QV25 intermediate_size
  int out_hidden = 0;  // merger output = text hidden size
  int patch_size = 14;
  int temporal_patch_size = 2;
  int spatial_merge_size = 2;
  int in_channels = 3;
  int window_size = 0;  // pixels; 0 = no window attention (QV2)
  std::vector<int> fullatt_block_indexes;
  Act act = Act::QuickGelu;  // QuickGelu (QV2 MLP) or Silu (QV25 SwiGLU)
  bool layernorm = true;     // QV2 LayerNorm with bias, QV25 RMSNorm
  float eps = 1e-6f;

  int head_dim() const { return num_heads > 0 ? width / num_heads : 0; }
  int patch_dim() const { return in_channels * temporal_patch_size * patch_size * patch_size; }
  int merge_unit() const { return spatial_merge_size * spatial_merge_size; }
};

struct Config {
  Arch arch = Arch::Qwen2VL;
  int hidden = 0;
  int layers = 0;
  int heads = 0;
  int kv_heads = 0;
  int head_dim = 0;
  int intermediate = 0;
  int vocab = 0;
  float rms_eps = 1e-6f;
  double rope_theta = 1e6;
  int mrope[3] = {0, 0, 0};
  bool tie_embeddings = false;
  int image_token = 151655;
  int video_token = 151656;
  int vision_start_token = 151652;
  int vision_end_token = 151653;
  int64_t max_positions = 0;  // 0: the engine's own limit
  VisionConfig vision;
};

// Throws starkv::Error naming the first inconsistent field.
void Validate(const Config& c);

// The largest prompt + generation length the engine accepts for this config.
int64_t PositionLimit(const Config& c);

}  // namespace starkv::qwen2vl
