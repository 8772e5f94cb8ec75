// STaR-KV building blocks (kawhiiiileo/STaR-KV @9f36ecf): online spatial MI prior, temporal
// stability discount, AEB temperature. Each updates its part of the per-layer LayerState.
#pragma once

#include <cstdint>
#include <vector>

#include "kv/kv_types.h"

namespace starkv::kv {

// strict_mi_score_2d: MI (nats) between equal-frequency value bins of p and spatial cells of a
// gh x gw raster (12 x 12 cells, 16 value bins by default). p: one group's scores over the frame.
double SpatialMi(const float* scores, int64_t n, int64_t gh, int64_t gw, const MethodParams& p);
// Pseudo grid of the reference: gh = round(sqrt(n)), gw = ceil(n / gh).
void PseudoGrid(int64_t n, int64_t& gh, int64_t& gw);

struct MiPriorResult {
  std::vector<float> w_g;  // [Hkv] group weights
  float lambda_eff = 0;
};
// online_mi_prior: step counter, MI per group over the current frame `cur` (may be empty), MI EMA,
// lambda ramp, group weights. S = group scores [Hkv][P].
MiPriorResult OnlineMiPrior(const std::vector<float>& S, int Hkv, int64_t P, const Span* cur, GridHW grid,
                            const MethodParams& p, LayerState& st, Telemetry& tel);

// Temporal discount (in place on `scaled`); spans are clipped to the past. S = [Hkv][P],
// g_star = argmax group per past slot.
void TemporalDiscount(std::vector<float>& scaled, const std::vector<float>& S, const std::vector<int>& g_star,
                      int Hkv, int64_t P, const std::vector<Span>& spans, const MethodParams& p, LayerState& st,
                      Telemetry& tel, std::vector<float>* discount_out);

// AEB: temperature from the normalized entropy of the head-mean of `pooled` (rows x P); stored in
// the state (EMA when smooth > 0). Returns T (<= 0 or NaN: no sharpening).
double AebTemperature(const std::vector<float>& pooled, int rows, int64_t P, const MethodParams& p, LayerState& st,
                      Telemetry& tel);

}  // namespace starkv::kv
