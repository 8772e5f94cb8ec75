// Hyperparameters by name: one table maps each name to its MethodParams field, with range checks.
#include <cmath>
#include <cstddef>
#include <string>

#include "kv/kv_method.h"

namespace starkv::kv {
namespace {

enum class Kind { Int, Double, Bool, Int64 };
struct Field {
  const char* name;
  Kind kind;
  size_t offset;
  double lo, hi;
};

#define F(n, kind, member, lo, hi) {n, Kind::kind, offsetof(MethodParams, member), lo, hi}
constexpr double kBig = 1e15;
const Field kFields[] = {
    F("window", Int, window, 1, 1e9),
    F("kernel", Int, kernel, 1, 4097),
    F("window_min1", Bool, window_min1, 0, 1),
    F("alpha", Double, alpha, 0, kBig),
    F("saliency_temperature", Double, saliency_temperature, 1e-12, kBig),
    F("pyramid_beta", Double, pyramid_beta, 1, kBig),
    F("num_layers", Int, num_layers, 1, 65536),
    F("layer_idx", Int, layer_idx, 0, 65535),
    F("qr_rank", Int, qr_rank, 1, 65536),
    F("sparsity_threshold", Double, sparsity_threshold, 0, 1),
    F("beta_min", Double, beta_min, 0, 1),
    F("beta_max", Double, beta_max, 0, kBig),
    F("layer_budget", Int64, layer_budget, -1, kBig),
    F("lambda", Double, lambda, 0, 1),
    F("profile_steps", Int, profile_steps, -1e9, 1e9),
    F("mi_decay", Double, mi_decay, 0, 1),
    F("mi_tau", Double, mi_tau, 0, kBig),
    F("lambda_ramp_steps", Int, lambda_ramp_steps, 0, 1e9),
    F("mi_value_bins", Int, mi_value_bins, 1, 1024),
    F("mi_row_bins", Int, mi_row_bins, 1, 256),
    F("mi_col_bins", Int, mi_col_bins, 1, 256),
    F("temporal", Bool, temporal, 0, 1),
    F("temporal_delta", Double, temporal_delta, -kBig, kBig),
    F("temporal_rho", Double, temporal_rho, 0, 1),
    F("temporal_eps", Double, temporal_eps, 0, 1),
    F("temporal_discount_min", Double, temporal_discount_min, 0, 1),
    F("temporal_warmup", Int, temporal_warmup, -1e9, 1e9),
    F("aeb", Bool, aeb, 0, 1),
    F("aeb_min", Double, aeb_min, -kBig, kBig),
    F("aeb_max", Double, aeb_max, -kBig, kBig),
    F("aeb_smooth", Double, aeb_smooth, 0, 1),
    F("mi_true_grid", Bool, mi_true_grid, 0, 1),
    F("per_query_head", Bool, per_query_head, 0, 1),
    F("vlcache_layer_budgets", Bool, vlcache_layer_budgets, 0, 1),
    F("floor_alpha", Double, floor_alpha, 0, 1),
    F("h2o_recent_fraction", Double, h2o_recent_fraction, 0, 1),
    F("debug", Bool, debug, 0, 1),
};
#undef F

}  // namespace

void SetParam(MethodParams& p, const std::string& name, double value) {
  for (const Field& f : kFields) {
    if (name != f.name) continue;
    if (!std::isfinite(value) || value < f.lo || value > f.hi)
      throw KvError("parameter '" + name + "' = " + std::to_string(value) + " is out of range [" + std::to_string(f.lo) +
                    ", " + std::to_string(f.hi) + "]");
    char* base = reinterpret_cast<char*>(&p) + f.offset;
    switch (f.kind) {
      case Kind::Int:
        if (value != std::floor(value)) throw KvError("parameter '" + name + "' must be an integer");
        *reinterpret_cast<int*>(base) = static_cast<int>(value);
        break;
      case Kind::Int64:
        if (value != std::floor(value)) throw KvError("parameter '" + name + "' must be an integer");
        *reinterpret_cast<int64_t*>(base) = static_cast<int64_t>(value);
        break;
      case Kind::Double:
        *reinterpret_cast<double*>(base) = value;
        break;
      case Kind::Bool:
        *reinterpret_cast<bool*>(base) = value != 0;
        break;
    }
    return;
  }
  if (name == "pooling" || name == "granularity") throw KvError("parameter '" + name + "' takes a string");
  throw KvError("unknown KV method parameter '" + name + "'");
}

void SetParamString(MethodParams& p, const std::string& name, const std::string& value) {
  if (name == "pooling") {
    if (value == "avgpool" || value == "avg") p.pooling = Pooling::Avg;
    else if (value == "maxpool" || value == "max") p.pooling = Pooling::Max;
    else throw KvError("pooling must be 'avgpool' or 'maxpool' (got '" + value + "')");
    return;
  }
  if (name == "granularity") {
    if (value == "query_head") p.granularity = Granularity::QueryHead;
    else if (value == "kv_head") p.granularity = Granularity::KvHead;
    else if (value == "shared") p.granularity = Granularity::Shared;
    else throw KvError("granularity must be 'query_head', 'kv_head' or 'shared' (got '" + value + "')");
    return;
  }
  throw KvError("parameter '" + name + "' does not take a string (got '" + value + "')");
}

std::vector<std::string> ParamNames() {
  std::vector<std::string> out{"pooling", "granularity"};
  for (const Field& f : kFields) out.push_back(f.name);
  return out;
}

}  // namespace starkv::kv
