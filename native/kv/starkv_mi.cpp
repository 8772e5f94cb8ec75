// STaR-KV online spatial MI prior: MI per KV group over the current frame, its EMA, the lambda
// ramp and the softmax group weights (starkv_mi.py: strict_mi_score_2d, online_mi_prior).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "kv/kernels.h"
#include "kv/starkv_parts.h"

namespace starkv::kv {

void PseudoGrid(int64_t n, int64_t& gh, int64_t& gw) {
  n = std::max<int64_t>(1, n);
  gh = std::max<int64_t>(1, static_cast<int64_t>(std::nearbyint(std::sqrt(static_cast<double>(n)))));
  gw = std::max<int64_t>(1, (n + gh - 1) / gh);
}

double SpatialMi(const float* scores, int64_t n, int64_t gh, int64_t gw, const MethodParams& p) {
  if (n <= 1) return 0.0;
  const int vb = std::max(1, p.mi_value_bins), rbins = std::max(1, p.mi_row_bins), cbins = std::max(1, p.mi_col_bins);
  // p = clamp(S, 0) / sum (fp32); sum <= 1e-12 -> MI 0
  std::vector<float> pr(n);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += (pr[i] = k::ClampNonNeg(scores[i]));
  const float sumf = static_cast<float>(sum);
  if (!(sumf > 1e-12f)) return 0.0;
  for (float& v : pr) v /= sumf;
  const int64_t ny = static_cast<int64_t>(rbins) * cbins;
  std::vector<int64_t> y(n);
  std::vector<char> seen_y(ny, 0);
  int64_t uy = 0;
  for (int64_t i = 0; i < n; ++i) {
    y[i] = k::SpatialBin(i, gh, gw, rbins, cbins);
    if (!seen_y[y[i]]++) ++uy;
  }
  if (uy <= 1) return 0.0;
  // ranks of an ascending sort (ties by position)
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return k::AscendingBefore(pr[a], a, pr[b], b); });
  std::vector<int64_t> a(n);
  std::vector<char> seen_a(vb, 0);
  int64_t ua = 0;
  for (int64_t r = 0; r < n; ++r) {
    a[order[r]] = k::ValueBin(r, n, vb);
    if (!seen_a[a[order[r]]]++) ++ua;
  }
  if (ua <= 1) return 0.0;
  std::vector<double> joint(static_cast<size_t>(vb) * ny, 0.0), pa(vb, 0.0), py(ny, 0.0);
  for (int64_t i = 0; i < n; ++i) joint[a[i] * ny + y[i]] += 1.0;
  for (double& v : joint) v /= static_cast<double>(n);
  for (int ai = 0; ai < vb; ++ai)
    for (int64_t yi = 0; yi < ny; ++yi) {
      pa[ai] += joint[ai * ny + yi];
      py[yi] += joint[ai * ny + yi];
    }
  double mi = 0.0;
  for (int ai = 0; ai < vb; ++ai)
    for (int64_t yi = 0; yi < ny; ++yi) {
      mi += k::MiTerm(joint[ai * ny + yi], pa[ai], py[yi]);
    }
  return std::max(0.0, mi);
}

MiPriorResult OnlineMiPrior(const std::vector<float>& S, int Hkv, int64_t P, const Span* cur, GridHW grid,
                            const MethodParams& p, LayerState& st, Telemetry& tel) {
  MiPriorResult r;
  r.w_g.assign(Hkv, 1.0f / static_cast<float>(Hkv));
  const float target_lam = static_cast<float>(std::max(0.0, std::min(1.0, p.lambda)));
  if (p.profile_steps <= 0) {  // MI prior disabled: uniform weights, beta == 1
    r.lambda_eff = target_lam;
    tel.lambda_eff = r.lambda_eff;
    tel.group_weights = r.w_g;
    return r;
  }
  st.profile_step += 1;
  const float decay = static_cast<float>(std::max(0.0, std::min(0.9999, p.mi_decay)));
  const double tau = std::max(p.mi_tau, 1e-6);
  if (cur && cur->end > cur->start) {
    const int64_t n = cur->end - cur->start;
    int64_t gh, gw;
    if (p.mi_true_grid && grid.rows > 0 && grid.cols > 0 && grid.rows * grid.cols == n) {
      gh = grid.rows;
      gw = grid.cols;
    } else {
      PseudoGrid(n, gh, gw);
    }
    std::vector<float> mi(Hkv);
    for (int g = 0; g < Hkv; ++g)
      mi[g] = static_cast<float>(SpatialMi(S.data() + static_cast<int64_t>(g) * P + cur->start, n, gh, gw, p));
    tel.mi_cur = mi;
    if (static_cast<int>(st.mi_ema.size()) == Hkv) {
      for (int g = 0; g < Hkv; ++g) st.mi_ema[g] = k::EmaUpdate(st.mi_ema[g], mi[g], decay);
    } else {
      st.mi_ema = mi;
    }
  }
  const int64_t ramp = std::max(1, p.lambda_ramp_steps > 0 ? p.lambda_ramp_steps : p.profile_steps);
  r.lambda_eff = st.profile_step <= p.profile_steps
                     ? 0.0f
                     : static_cast<float>(target_lam * std::min(1.0, static_cast<double>(st.profile_step - p.profile_steps) /
                                                                          static_cast<double>(ramp)));
  if (static_cast<int>(st.mi_ema.size()) == Hkv) {
    const auto [mn_it, mx_it] = std::minmax_element(st.mi_ema.begin(), st.mi_ema.end());
    const float mn = *mn_it, mx = *mx_it;
    std::vector<float> s(Hkv);
    for (int g = 0; g < Hkv; ++g) s[g] = (mx - mn) < 1e-12f ? 0.5f : (st.mi_ema[g] - mn) / (mx - mn);
    double smax = -INFINITY, tot = 0.0;
    for (int g = 0; g < Hkv; ++g) smax = std::max(smax, static_cast<double>(s[g] / static_cast<float>(tau)));
    std::vector<double> e(Hkv);
    for (int g = 0; g < Hkv; ++g) tot += (e[g] = std::exp(static_cast<double>(s[g] / static_cast<float>(tau)) - smax));
    float wsum = 0.0f;
    for (int g = 0; g < Hkv; ++g) wsum += (r.w_g[g] = static_cast<float>(e[g] / tot));
    for (int g = 0; g < Hkv; ++g) r.w_g[g] /= std::max(wsum, 1e-8f);
  }
  tel.mi_ema = st.mi_ema;
  tel.group_weights = r.w_g;
  tel.lambda_eff = r.lambda_eff;
  tel.profile_step = st.profile_step;
  return r;
}

}  // namespace starkv::kv
