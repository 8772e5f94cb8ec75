// Greedy and sampled token choice. Order of filters (HF's warpers): temperature, top-k, top-p.
#include "cpu/sample.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace starkv::cpu {

int32_t Argmax(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (x[i] > x[best] || (std::isnan(x[best]) && !std::isnan(x[i]))) best = i;
  return static_cast<int32_t>(best);
}

int32_t Sample(float* logits, int64_t n, const SampleParams& p, std::mt19937_64& rng) {
  if (n <= 0) return 0;
  if (!(p.temperature > 0.0f) || p.top_k == 1) return Argmax(logits, n);
  // Candidates sorted by logit, descending; ties by lower index (stable).
  std::vector<int32_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  const int64_t k = p.top_k > 0 ? std::min<int64_t>(p.top_k, n) : n;
  auto cmp = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  if (k < n) {
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), cmp);
    idx.resize(static_cast<size_t>(k));
  } else {
    std::sort(idx.begin(), idx.end(), cmp);
  }
  // Softmax of logits / T over the candidates, in double.
  const double inv_t = 1.0 / static_cast<double>(p.temperature);
  const double m = static_cast<double>(logits[idx[0]]) * inv_t;
  std::vector<double> pr(idx.size());
  double sum = 0.0;
  for (size_t i = 0; i < idx.size(); ++i) {
    const double v = static_cast<double>(logits[idx[i]]) * inv_t - m;
    pr[i] = std::isfinite(v) ? std::exp(v) : 0.0;
    sum += pr[i];
  }
  if (!(sum > 0.0)) return idx[0];
  // Nucleus: the smallest prefix whose mass reaches top_p (at least one token).
  size_t keep = pr.size();
  if (p.top_p > 0.0f && p.top_p < 1.0f) {
    double c = 0.0;
    for (size_t i = 0; i < pr.size(); ++i) {
      c += pr[i] / sum;
      if (c >= p.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  double kept = 0.0;
  for (size_t i = 0; i < keep; ++i) kept += pr[i];
  // Uniform in [0, 1) from 53 random bits (the engine's own mapping, not a library distribution).
  const double u = static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0);
  const double target = u * kept;
  double c = 0.0;
  for (size_t i = 0; i < keep; ++i) {
    c += pr[i];
    if (target < c) return idx[i];
  }
  return idx[keep - 1];
}

}  // namespace starkv::cpu
