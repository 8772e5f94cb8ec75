// M-RoPE position ids of a prompt (HF get_rope_index, spec 5.2) and the text rotary tables (5.3).
#pragma once

#include <cstdint>
#include <vector>

#include "models/qwen2vl_config.h"
#include "models/vision_layout.h"

namespace starkv::qwen2vl {

struct RopeIndex {
  std::vector<int32_t> pos;  // [3][L] row-major: t row, h row, w row
  int64_t next = 0;          // position of the next token after the prompt
  int64_t delta = 0;         // next - (start_index + L)
};

// Positions of ids[0..L) starting at M-RoPE position `start` (sequence index `start_index`). Each run
// of image pad tokens must match the next image grid exactly; throws starkv::Error otherwise.
RopeIndex ComputeRopeIndex(const Config& c, const int32_t* ids, int64_t L, const std::vector<ImageGrid>& grids,
                           int64_t start = 0, int64_t start_index = 0);

// Checks ids against the vocabulary and the image pads against the grids (clear messages).
void CheckPrompt(const Config& c, const int32_t* ids, int64_t L, const std::vector<ImageGrid>& grids);

// cos/sin tables [n, hd/2] for positions pos_t/pos_h/pos_w[0..n) (section-selected M-RoPE angles).
void MropeTables(const Config& c, const int32_t* pos_t, const int32_t* pos_h, const int32_t* pos_w, int64_t n,
                 float* cos, float* sin);

}  // namespace starkv::qwen2vl
