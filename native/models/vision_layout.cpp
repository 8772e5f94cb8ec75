// Grid parsing, window index (spec 4.4), segments and the 2-D rotary angles (spec 4.2).
#include "models/vision_layout.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"

namespace starkv::qwen2vl {

std::vector<ImageGrid> ParseGrids(const int32_t* grids, int64_t n_values, const VisionConfig& v) {
  if (n_values % 3 != 0) throw Error("image grids must hold 3 numbers (t, h, w) per image, got " + std::to_string(n_values));
  std::vector<ImageGrid> out;
  const int m = v.spatial_merge_size;
  for (int64_t i = 0; i < n_values / 3; ++i) {
    ImageGrid g{grids[3 * i], grids[3 * i + 1], grids[3 * i + 2]};
    const std::string where = "image " + std::to_string(i) + " grid (" + std::to_string(g.t) + ", " +
                              std::to_string(g.h) + ", " + std::to_string(g.w) + ")";
    if (g.t <= 0 || g.h <= 0 || g.w <= 0) throw Error(where + ": every value must be positive");
    if (g.h % m != 0 || g.w % m != 0)
      throw Error(where + ": h and w must be multiples of the merge size " + std::to_string(m));
    if (g.t > 4096 || g.h > 65536 || g.w > 65536 || g.Patches() > (int64_t(1) << 26))
      throw Error(where + ": too large");
    out.push_back(g);
  }
  return out;
}

int64_t MergedTokens(const std::vector<ImageGrid>& g, const VisionConfig& v) {
  int64_t n = 0;
  for (const auto& x : g) n += x.Patches() / v.merge_unit();
  return n;
}

VisionLayout MakeVisionLayout(const Config& c, const std::vector<ImageGrid>& grids) {
  const VisionConfig& v = c.vision;
  const int m = v.spatial_merge_size, unit = v.merge_unit();
  VisionLayout L;
  L.cu_seqlens.push_back(0);
  for (const auto& g : grids)
    for (int64_t t = 0; t < g.t; ++t) L.cu_seqlens.push_back(L.cu_seqlens.back() + g.h * g.w);
  L.patches = L.cu_seqlens.back();

  // Row/column of every patch in the original (processor) order of spec 3.3.
  std::vector<int32_t> prow, pcol;
  prow.reserve(L.patches);
  pcol.reserve(L.patches);
  for (const auto& g : grids)
    for (int64_t t = 0; t < g.t; ++t)
      for (int64_t bh = 0; bh < g.h / m; ++bh)
        for (int64_t bw = 0; bw < g.w / m; ++bw)
          for (int mh = 0; mh < m; ++mh)
            for (int mw = 0; mw < m; ++mw) {
              prow.push_back(static_cast<int32_t>(bh * m + mh));
              pcol.push_back(static_cast<int32_t>(bw * m + mw));
            }

  // Window permutation of merged tokens (QV25 with a window size).
  const bool windows = c.arch == Arch::Qwen25VL && v.window_size > 0;
  if (windows) {
    const int64_t wm = v.window_size / m / v.patch_size;
    if (wm <= 0) throw Error("vision window size is smaller than one merged token");
    L.cu_windows.push_back(0);
    int64_t base = 0;
    for (const auto& g : grids) {
      const int64_t lh = g.h / m, lw = g.w / m;
      for (int64_t t = 0; t < g.t; ++t)
        for (int64_t wi = 0; wi < (lh + wm - 1) / wm; ++wi)
          for (int64_t wj = 0; wj < (lw + wm - 1) / wm; ++wj) {
            int64_t count = 0;
            for (int64_t r = wi * wm; r < std::min((wi + 1) * wm, lh); ++r)
              for (int64_t cc = wj * wm; cc < std::min((wj + 1) * wm, lw); ++cc) {
                L.window_index.push_back(base + t * lh * lw + r * lw + cc);
                ++count;
              }
            if (count > 0) L.cu_windows.push_back(L.cu_windows.back() + unit * count);
          }
      base += g.t * lh * lw;
    }
  }

  // Rotary angles: channel pair j' < hdv/4 uses the row, the rest the column (inv_freq in fp32).
  const int hdv = v.head_dim(), half = hdv / 2, quarter = hdv / 4;
  std::vector<float> inv(static_cast<size_t>(quarter));
  for (int i = 0; i < quarter; ++i)
    inv[i] = 1.0f / static_cast<float>(std::pow(10000.0, static_cast<double>(static_cast<float>(2 * i) / static_cast<float>(half))));
  L.cos.resize(static_cast<size_t>(L.patches) * half);
  L.sin.resize(static_cast<size_t>(L.patches) * half);
  for (int64_t p = 0; p < L.patches; ++p) {
    // Processing row p holds original patch src.
    const int64_t src = windows ? L.window_index[p / unit] * unit + p % unit : p;
    for (int j = 0; j < half; ++j) {
      const float ang = j < quarter ? static_cast<float>(prow[src]) * inv[j] : static_cast<float>(pcol[src]) * inv[j - quarter];
      L.cos[p * half + j] = std::cos(ang);
      L.sin[p * half + j] = std::sin(ang);
    }
  }
  return L;
}

}  // namespace starkv::qwen2vl
