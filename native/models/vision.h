// The vision tower: patch embedding, blocks (full / windowed attention), merger, un-permutation.
#pragma once

#include <atomic>
#include <vector>

#include "core/backend.h"
#include "models/qwen2vl_config.h"
#include "models/qwen2vl_weights.h"
#include "models/trace.h"
#include "models/vision_layout.h"

namespace starkv::qwen2vl {

class VisionTower {
 public:
  VisionTower(const Config& c, const VisionWeights& w, Backend& be) : c_(c), w_(w), be_(be) {}

  // pixels: [patches, patch_dim] in the processor's order (spec 3.3). Returns the merged tokens,
  // [MergedTokens(grids), out_hidden], in LLM order (images in order, raster over each merged grid).
  // Checks the cancel flag between blocks (throws starkv::Cancelled).
  Buffer Encode(const float* pixels, int64_t rows, const std::vector<ImageGrid>& grids, Trace* trace,
                const std::atomic<bool>* cancel);

 private:
  struct BlockScratch {
    Buffer a, big, o;  // [n, Cv], [n, max(3 Cv, 2 mlp)], [n, Cv]
  };
  void Block(int j, float* x, int64_t n, const VisionLayout& L, const float* cos, const float* sin, BlockScratch& s,
             Trace* trace);

  const Config& c_;
  const VisionWeights& w_;
  Backend& be_;
};

}  // namespace starkv::qwen2vl
