// The one interface every KV compression method implements, and the registry that finds them by name.
//
// Engine usage, per layer right after that layer's attention over the new turn:
//   const KvMethod* m = FindMethod("starkv");            // nullptr if unknown
//   MethodParams p = m->Defaults();  SetParam(p, "aeb_min", 0.95);  ...
//   LayerInputs in{...};   // views of the layer's K [Hkv][capacity][d], window queries, hidden rows, spans
//   Selection sel; Telemetry tel;
//   m->Compress(in, Budget{20.0}, p, state_of_this_layer, sel, tel);
//   then keep slots sel.kept (+ the window [past_len, seq_len)) and compact K/V (compact.h).
// Methods that need a statistic of every layer before budgets can be set (VL-Cache) say so with
// NeedsPrepass(); the caller runs Prepass() on every layer, calls AllocateLayerBudgets(), and passes
// each layer's budget in params.layer_budget (vlcache) or Budget::cap_tokens (other methods).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "kv/kv_types.h"

namespace starkv::kv {

class KvMethod {
 public:
  virtual ~KvMethod() = default;
  virtual const char* Name() const = 0;
  // The method's reference defaults.
  virtual MethodParams Defaults() const = 0;
  virtual bool NeedsPrepass(const MethodParams&) const { return false; }
  // Per-layer statistic for budget allocation (VL-Cache: post-vision attention sparsity gamma).
  virtual double Prepass(const LayerInputs& in, const MethodParams& p) const;
  // Scores the layer and selects the slots to keep; updates `state` (per-layer, per-episode).
  virtual void Compress(const LayerInputs& in, const Budget& budget, const MethodParams& p,
                        LayerState& state, Selection& out, Telemetry& tel) const = 0;
};

// Registry (static table; no mutable global state).
const KvMethod* FindMethod(const std::string& name);
const KvMethod& GetMethod(const std::string& name);  // throws KvError naming the known methods
std::vector<std::string> MethodNames();

// Sets one hyperparameter by name (numbers and booleans as double). Throws KvError for an unknown
// name or a value out of range. Enum-valued options take strings (SetParamString).
void SetParam(MethodParams& p, const std::string& name, double value);
void SetParamString(MethodParams& p, const std::string& name, const std::string& value);
std::vector<std::string> ParamNames();

// VL-Cache layer budgets from per-layer sparsity gammas (GUI-KV repo's rule):
// beta_l = clamp((1-gamma_l)/sum(1-gamma), beta_min, beta_max); budget_l = int(int(L*b/100)*NL*beta_l)
// computed in float32 as the reference does. `betas_out` (optional) receives beta_l.
std::vector<int64_t> AllocateLayerBudgets(const std::vector<double>& gammas, int64_t seq_len,
                                          const Budget& budget, const MethodParams& p,
                                          std::vector<double>* betas_out = nullptr);

}  // namespace starkv::kv
