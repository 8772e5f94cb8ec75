// Parsing of the `kv` option and conversion of per-layer turn reports (see kv_turn_js.h).
#include "binding/kv_turn_js.h"

#include <cmath>
#include <string>
#include <utility>

namespace starkv::binding {
namespace {

Napi::Value NumOrNull(Napi::Env env, double v) { return std::isfinite(v) ? Napi::Number::New(env, v) : env.Null(); }

Napi::Array Floats(Napi::Env env, const std::vector<float>& xs) {
  Napi::Array a = Napi::Array::New(env, xs.size());
  for (size_t i = 0; i < xs.size(); ++i) a.Set(static_cast<uint32_t>(i), NumOrNull(env, xs[i]));
  return a;
}

}  // namespace

qwen2vl::KvPolicy ParseKvPolicy(Napi::Env env, const Napi::Value& v) {
  qwen2vl::KvPolicy p;
  if (v.IsUndefined() || v.IsNull()) return p;
  if (!v.IsObject()) throw Napi::Error::New(env, "req.kv must be an object");
  const Napi::Object o = v.As<Napi::Object>();
  if (!o.Get("method").IsString()) throw Napi::Error::New(env, "req.kv.method must be a string");
  const std::string name = o.Get("method").As<Napi::String>().Utf8Value();
  try {
    p.method = &kv::GetMethod(name);
    std::vector<std::pair<std::string, double>> nums;
    std::vector<std::pair<std::string, std::string>> strs;
    if (o.Has("params") && o.Get("params").IsObject()) {
      const Napi::Object ps = o.Get("params").As<Napi::Object>();
      const Napi::Array keys = ps.GetPropertyNames();
      for (uint32_t i = 0; i < keys.Length(); ++i) {
        const std::string k = keys.Get(i).As<Napi::String>().Utf8Value();
        const Napi::Value x = ps.Get(k);
        if (x.IsNumber()) nums.emplace_back(k, x.As<Napi::Number>().DoubleValue());
        else if (x.IsBoolean()) nums.emplace_back(k, x.As<Napi::Boolean>().Value() ? 1.0 : 0.0);
        else if (x.IsString()) strs.emplace_back(k, x.As<Napi::String>().Utf8Value());
        else throw kv::KvError("req.kv.params." + k + " must be a number, boolean or string");
      }
    }
    p.params = qwen2vl::PolicyParams(*p.method, nums, strs);
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, std::string("kv: ") + e.what());
  }
  auto num = [&](const char* k, double d) {
    if (!o.Has(k) || o.Get(k).IsUndefined() || o.Get(k).IsNull()) return d;
    if (!o.Get(k).IsNumber()) throw Napi::Error::New(env, std::string("req.kv.") + k + " must be a number");
    return o.Get(k).As<Napi::Number>().DoubleValue();
  };
  p.budget.percent = num("percent", 20.0);
  p.budget.ref_len = static_cast<int64_t>(num("refLen", -1));
  p.budget.cap_tokens = static_cast<int64_t>(num("capTokens", -1));
  if (!(p.budget.percent > 0)) throw Napi::Error::New(env, "req.kv.percent must be > 0");
  return p;
}

Napi::Array LayerReportsToJs(Napi::Env env, const std::vector<qwen2vl::LayerReport>& layers) {
  Napi::Array out = Napi::Array::New(env, layers.size());
  for (size_t l = 0; l < layers.size(); ++l) {
    const qwen2vl::LayerReport& r = layers[l];
    Napi::Object o = Napi::Object::New(env);
    o.Set("cap", static_cast<double>(r.cap));
    o.Set("compressed", r.compressed);
    auto toks = Napi::Int32Array::New(env, r.slot_tokens.size());
    for (size_t i = 0; i < r.slot_tokens.size(); ++i) toks[i] = static_cast<int32_t>(r.slot_tokens[i]);
    o.Set("slotTokens", toks);
    Napi::Object t = Napi::Object::New(env);
    t.Set("temperature", NumOrNull(env, r.tel.temperature));
    t.Set("entropy", NumOrNull(env, r.tel.entropy));
    t.Set("normalizedEntropy", NumOrNull(env, r.tel.normalized_entropy));
    t.Set("lambdaEff", NumOrNull(env, r.tel.lambda_eff));
    t.Set("miCur", Floats(env, r.tel.mi_cur));
    t.Set("miEma", Floats(env, r.tel.mi_ema));
    t.Set("groupWeights", Floats(env, r.tel.group_weights));
    t.Set("stability", Floats(env, r.tel.stability));
    t.Set("temporalStep", static_cast<double>(r.tel.temporal_step));
    t.Set("profileStep", static_cast<double>(r.tel.profile_step));
    t.Set("layerBudget", static_cast<double>(r.tel.layer_budget));
    t.Set("branch", r.tel.branch);
    o.Set("telemetry", t);
    out.Set(static_cast<uint32_t>(l), o);
  }
  return out;
}

}  // namespace starkv::binding
