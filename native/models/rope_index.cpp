// get_rope_index and the M-RoPE cos/sin tables.
#include "models/rope_index.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"

namespace starkv::qwen2vl {

void CheckPrompt(const Config& c, const int32_t* ids, int64_t L, const std::vector<ImageGrid>& grids) {
  if (L <= 0) throw Error("the prompt is empty");
  int64_t pads = 0, runs = 0;
  for (int64_t i = 0; i < L; ++i) {
    if (ids[i] < 0 || ids[i] >= c.vocab)
      throw Error("prompt token " + std::to_string(i) + " has id " + std::to_string(ids[i]) +
                  ", outside the vocabulary [0, " + std::to_string(c.vocab) + ")");
    if (ids[i] == c.video_token)
      throw Error("prompt token " + std::to_string(i) + " is a video pad (id " + std::to_string(c.video_token) +
                  "); video input is not supported");
    if (ids[i] == c.image_token) {
      ++pads;
      if (i == 0 || ids[i - 1] != c.image_token) ++runs;
    }
  }
  const int64_t need = MergedTokens(grids, c.vision);
  if (pads != need)
    throw Error("the prompt has " + std::to_string(pads) + " image pad token(s) (id " + std::to_string(c.image_token) +
                ") in " + std::to_string(runs) + " run(s) but the " + std::to_string(grids.size()) +
                " image(s) need " + std::to_string(need));
}

RopeIndex ComputeRopeIndex(const Config& c, const int32_t* ids, int64_t L, const std::vector<ImageGrid>& grids,
                           int64_t start, int64_t start_index) {
  RopeIndex r;
  r.pos.assign(static_cast<size_t>(3 * L), 0);
  int32_t* pt = r.pos.data();
  int32_t* ph = pt + L;
  int32_t* pw = ph + L;
  const int m = c.vision.spatial_merge_size;
  int64_t next = start;
  size_t k = 0;
  auto check = [](int64_t p) {
    if (p > 2000000000LL) throw Error("M-RoPE position overflow");
    return static_cast<int32_t>(p);
  };
  for (int64_t i = 0; i < L;) {
    if (ids[i] != c.image_token) {
      pt[i] = ph[i] = pw[i] = check(next);
      ++next;
      ++i;
      continue;
    }
    if (k >= grids.size())
      throw Error("prompt token " + std::to_string(i) + " starts an image pad run but all " +
                  std::to_string(grids.size()) + " image(s) are used");
    const ImageGrid& g = grids[k];
    const int64_t lh = g.h / m, lw = g.w / m, n = g.t * lh * lw;
    int64_t run = 0;
    while (i + run < L && ids[i + run] == c.image_token && run < n) ++run;
    if (run < n)
      throw Error("image " + std::to_string(k) + " needs " + std::to_string(n) + " consecutive image pad tokens at token " +
                  std::to_string(i) + " but the prompt has " + std::to_string(run));
    int64_t mx = next;
    for (int64_t tt = 0; tt < g.t; ++tt)
      for (int64_t y = 0; y < lh; ++y)
        for (int64_t x = 0; x < lw; ++x) {
          const int64_t j = i + (tt * lh + y) * lw + x;
          // Temporal index of frame tt: HF uses tt for Qwen2-VL images and 0 for Qwen2.5-VL images
          // (second_per_grid_t = 0); processor images always have t = 1, where both give 0.
          const int64_t tpos = next + (c.arch == Arch::Qwen2VL ? tt : 0);
          pt[j] = check(tpos);
          ph[j] = check(next + y);
          pw[j] = check(next + x);
          mx = std::max({mx, tpos, next + y, next + x});
        }
    next = mx + 1;
    i += n;
    ++k;
  }
  if (k != grids.size())
    throw Error("the prompt uses " + std::to_string(k) + " of the " + std::to_string(grids.size()) + " image(s)");
  r.next = next;
  r.delta = next - (start_index + L);
  return r;
}

void MropeTables(const Config& c, const int32_t* pos_t, const int32_t* pos_h, const int32_t* pos_w, int64_t n,
                 float* cos, float* sin) {
  const int half = c.head_dim / 2;
  std::vector<float> inv(static_cast<size_t>(half));
  std::vector<int> axis(static_cast<size_t>(half));
  for (int i = 0; i < half; ++i) {
    const float e = static_cast<float>(2 * i) / static_cast<float>(c.head_dim);
    inv[i] = 1.0f / static_cast<float>(std::pow(static_cast<double>(static_cast<float>(c.rope_theta)), static_cast<double>(e)));
    axis[i] = i < c.mrope[0] ? 0 : i < c.mrope[0] + c.mrope[1] ? 1 : 2;
  }
  const int32_t* p[3] = {pos_t, pos_h, pos_w};
  for (int64_t r = 0; r < n; ++r)
    for (int i = 0; i < half; ++i) {
      const float ang = static_cast<float>(p[axis[i]][r]) * inv[i];
      cos[r * half + i] = std::cos(ang);
      sin[r * half + i] = std::sin(ang);
    }
}

}  // namespace starkv::qwen2vl
