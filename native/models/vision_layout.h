// Where every patch goes in the vision tower: image grids, per-image/frame attention segments,
// the Qwen2.5-VL window permutation and window segments, and the 2-D rotary tables.
#pragma once

#include <cstdint>
#include <vector>

#include "models/qwen2vl_config.h"

namespace starkv::qwen2vl {

struct ImageGrid {
  int64_t t = 0, h = 0, w = 0;  // in patches
  int64_t Patches() const { return t * h * w; }
};

// grids: n*3 values (t, h, w); checks each against the vision config (h, w multiples of the merge
// size, positive, bounded). Throws starkv::Error.
std::vector<ImageGrid> ParseGrids(const int32_t* grids, int64_t n_values, const VisionConfig& v);
int64_t MergedTokens(const std::vector<ImageGrid>& g, const VisionConfig& v);

struct VisionLayout {
  int64_t patches = 0;
  std::vector<int64_t> cu_seqlens;    // full attention: one segment per image per frame
  std::vector<int64_t> window_index;  // QV25: merged-token order used inside the tower (empty: none)
  std::vector<int64_t> cu_windows;    // QV25: window segment boundaries in patches (processing order)
  std::vector<float> cos, sin;        // [patches, hdv/2] in processing order
};

VisionLayout MakeVisionLayout(const Config& c, const std::vector<ImageGrid>& grids);

}  // namespace starkv::qwen2vl
