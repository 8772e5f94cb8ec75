// Config validation.
#include "models/qwen2vl_config.h"

#include <algorithm>

#include "core/error.h"

namespace starkv::qwen2vl {
namespace {

void Positive(int64_t v, const char* field) {
  if (v <= 0) throw Error(std::string("config.") + field + " must be positive (got " + std::to_string(v) + ")");
}

}  // namespace

void Validate(const Config& c) {
  Positive(c.hidden, "hiddenSize");
  Positive(c.layers, "numLayers");
  Positive(c.heads, "numHeads");
  Positive(c.kv_heads, "numKvHeads");
  Positive(c.head_dim, "headDim");
  Positive(c.intermediate, "intermediateSize");
  Positive(c.vocab, "vocabSize");
  if (c.heads % c.kv_heads != 0)
    throw Error("config.numHeads " + std::to_string(c.heads) + " is not a multiple of numKvHeads " +
                std::to_string(c.kv_heads));
  if (c.head_dim % 2 != 0) throw Error("config.headDim must be even");
  if (c.mrope[0] < 0 || c.mrope[1] < 0 || c.mrope[2] < 0 || c.mrope[0] + c.mrope[1] + c.mrope[2] != c.head_dim / 2)
    throw Error("config.mropeSection must be 3 non-negative numbers summing to headDim/2 = " +
                std::to_string(c.head_dim / 2));
  if (!(c.rms_eps > 0.0f)) throw Error("config.rmsNormEps must be positive");
  if (!(c.rope_theta > 0.0)) throw Error("config.ropeTheta must be positive");
  for (int id : {c.image_token, c.video_token, c.vision_start_token, c.vision_end_token})
    if (id < 0) throw Error("config token ids must be non-negative");
  const VisionConfig& v = c.vision;
  Positive(v.depth, "vision.depth");
  Positive(v.width, "vision.width");
  Positive(v.num_heads, "vision.numHeads");
  Positive(v.mlp_width, "vision.mlpWidth");
  Positive(v.patch_size, "vision.patchSize");
  Positive(v.temporal_patch_size, "vision.temporalPatchSize");
  Positive(v.spatial_merge_size, "vision.spatialMergeSize");
  Positive(v.in_channels, "vision.inChannels");
  if (static_cast<int64_t>(v.in_channels) * v.temporal_patch_size * v.patch_size * v.patch_size > (int64_t(1) << 24))
    throw Error("config.vision: inChannels * temporalPatchSize * patchSize^2 is too large");
  if (v.width % v.num_heads != 0 || v.head_dim() % 4 != 0)
    throw Error("config.vision.width / numHeads must be a multiple of 4");
  if (v.out_hidden != c.hidden)
    throw Error("config.vision.outHidden " + std::to_string(v.out_hidden) + " differs from hiddenSize " +
                std::to_string(c.hidden));
  if (v.window_size < 0) throw Error("config.vision.windowSize must be >= 0");
  if (c.arch == Arch::Qwen25VL && v.window_size > 0 && v.window_size % (v.spatial_merge_size * v.patch_size) != 0)
    throw Error("config.vision.windowSize must be a multiple of patchSize*spatialMergeSize");
  for (int j : v.fullatt_block_indexes)
    if (j < 0 || j >= v.depth) throw Error("config.vision.fullattBlockIndexes has " + std::to_string(j) + ", outside [0, depth)");
  if (!(v.eps > 0.0f)) throw Error("config.vision.eps must be positive");
}

int64_t PositionLimit(const Config& c) {
  const int64_t engine_limit = int64_t(1) << 20;
  return c.max_positions > 0 ? std::min(c.max_positions, engine_limit) : engine_limit;
}

}  // namespace starkv::qwen2vl
