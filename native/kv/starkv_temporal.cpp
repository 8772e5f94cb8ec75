// STaR-KV cumulative temporal stability discount (starkv_temporal.py): per-group attention pattern
// over the current frame, its EMA (stored before use), cosine stability, and the frame-age
// discount D = dmin + (1 - dmin) exp(-delta * age * (eps + (1 - eps) * stab[g*])).
#include <algorithm>
#include <cmath>

#include "kv/kernels.h"
#include "kv/starkv_parts.h"

namespace starkv::kv {

void TemporalDiscount(std::vector<float>& scaled, const std::vector<float>& S, const std::vector<int>& g_star,
                      int Hkv, int64_t P, const std::vector<Span>& spans, const MethodParams& p, LayerState& st,
                      Telemetry& tel, std::vector<float>* discount_out) {
  if (!p.temporal || P <= 0 || spans.size() <= 1) return;
  const Span cur = spans.back();
  const int64_t n = cur.end - cur.start;
  if (n <= 0) return;
  const float rho = static_cast<float>(std::max(0.0, std::min(0.9999, p.temporal_rho)));
  // A_cur[g] = clamp(S[g, cur], 0) / max(sum, 1e-8)
  std::vector<float> a(static_cast<size_t>(Hkv) * n);
  for (int g = 0; g < Hkv; ++g) {
    const float* sg = S.data() + static_cast<int64_t>(g) * P + cur.start;
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += k::ClampNonNeg(sg[i]);
    const float den = k::PatternDenominator(sum);
    for (int64_t i = 0; i < n; ++i) a[g * n + i] = k::PatternValue(sg[i], den);
  }
  const bool same = st.pattern_groups == Hkv && st.pattern_len == n &&
                    st.pattern_ema.size() == static_cast<size_t>(Hkv) * n;
  if (p.debug && same) tel.Add("temporal_pattern_ema_prev", {Hkv, n}, st.pattern_ema);
  if (same) {
    for (size_t i = 0; i < a.size(); ++i) st.pattern_ema[i] = k::EmaUpdate(st.pattern_ema[i], a[i], rho);
  } else {
    st.pattern_ema = a;
    st.pattern_groups = Hkv;
    st.pattern_len = n;
  }
  if (p.debug) tel.Add("temporal_pattern_ema_after", {Hkv, n}, st.pattern_ema);
  std::vector<float> stab(Hkv);
  for (int g = 0; g < Hkv; ++g) {
    double dot = 0.0, na = 0.0, nm = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const double x = a[g * n + i], m = st.pattern_ema[g * n + i];
      dot += x * m;
      na += x * x;
      nm += m * m;
    }
    stab[g] = k::CosStability(dot, na, nm);
  }
  tel.stability = stab;
  const float dmin = static_cast<float>(std::max(0.0, std::min(1.0, p.temporal_discount_min)));
  const float eps = static_cast<float>(std::max(0.0, std::min(1.0, p.temporal_eps)));
  const float delta = static_cast<float>(p.temporal_delta);
  std::vector<float> age(P, 0.0f);
  const int64_t nf = static_cast<int64_t>(spans.size());
  for (int64_t i = 0; i < nf; ++i)
    for (int64_t t = spans[i].start; t < spans[i].end; ++t) age[t] = k::FrameAge(i, nf);
  if (p.debug) tel.Add("frame_distance", {P}, age);
  std::vector<float> D(P);
  for (int64_t t = 0; t < P; ++t) D[t] = k::TemporalDiscount(age[t], stab[g_star[t]], delta, eps, dmin);
  if (st.temporal_step <= p.temporal_warmup) return;  // EMA updated even during warm-up
  for (int64_t t = 0; t < P; ++t) scaled[t] *= D[t];
  if (discount_out) *discount_out = D;
}

}  // namespace starkv::kv
