// STaR-KV AEB (starkv_aeb.py): temperature T = T_min + (T_max - T_min) * normalized entropy of the
// head-mean pooled scores (after the saliency boost); optional EMA; sharpening x^(1/T) is applied
// by the caller. Rank-preserving: it never changes the kept set.
#include <algorithm>
#include <cmath>

#include "kv/kernels.h"
#include "kv/starkv_parts.h"

namespace starkv::kv {

double AebTemperature(const std::vector<float>& pooled, int rows, int64_t P, const MethodParams& p, LayerState& st,
                      Telemetry& tel) {
  if (!p.aeb) {
    st.has_temperature = false;
    return Telemetry::kNaN;
  }
  const double eps = 1e-8;
  std::vector<float> m(P);
  double sum = 0.0;
  for (int64_t t = 0; t < P; ++t) {
    m[t] = k::GroupMeanAt(pooled.data() + t, P, rows);
    sum += m[t];
  }
  const float den = std::max(static_cast<float>(sum), static_cast<float>(eps));
  double h = 0.0;
  for (int64_t t = 0; t < P; ++t) {
    const float pt = m[t] / den;
    h -= static_cast<double>(pt) * std::log(static_cast<double>(pt) + eps);
  }
  const float entropy = static_cast<float>(h);
  const double max_entropy = std::log(static_cast<double>(std::max<int64_t>(1, P)));
  const float ne = static_cast<float>(entropy / (max_entropy + eps));
  double T = static_cast<float>(k::AebTemperature(ne, p.aeb_min, p.aeb_max));
  if (p.aeb_smooth > 0 && st.has_temperature) T = p.aeb_smooth * st.temperature + (1 - p.aeb_smooth) * T;
  st.has_temperature = true;
  st.temperature = T;
  tel.temperature = T;
  tel.entropy = entropy;
  tel.max_entropy = max_entropy;
  tel.normalized_entropy = ne;
  return T;
}

}  // namespace starkv::kv
