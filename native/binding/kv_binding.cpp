// N-API surface of the KV compression methods (native/kv): synchronous calls over typed arrays
// (zero-copy views), a KvLayerState class holding one layer's episode state, and strict checks of
// every argument so bad input becomes a JS Error, never a crash.
//
//   kvMethods() -> string[]
//   kvDefaults(method) -> { param: value }
//   kvCompress(method, params, budget, layer, state?) -> { compressed, granularity, cap, window,
//       pastLen, kKeep, kept: Int32Array[], gatherOrder: Int32Array[], telemetry }
//   kvPrepass(method, params, layer) -> number          (VL-Cache sparsity gamma)
//   kvLayerBudgets(gammas, seqLen, budget, params) -> { budgets: number[], betas: number[] }
//   new KvLayerState(); state.reset(); state.snapshot()
// layer = { numHeads, numKvHeads, headDim, seqLen, keys: Float32Array, kvCapacity?, queries?: Float32Array,
//           qRows?, hidden?: Float32Array, hiddenRow0?, hiddenRows?, hiddenSize?, spans?: [[s, e]...],
//           spanGrids?: [[rows, cols]...], slotPositions?: number[] | Int32Array | Float64Array,
//           lastVisionIndex? }
// budget = { percent?, capTokens?, refLen? }
#include <napi.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "kv/kv_method.h"

namespace starkv::binding {
namespace {

using namespace starkv::kv;

constexpr napi_type_tag kStateTag = {0x5f3a1c2e9b7d4a61ULL, 0x8e2b6c0d4f1a9e37ULL};

[[noreturn]] void Fail(Napi::Env env, const std::string& msg) { throw Napi::Error::New(env, msg); }

double Num(Napi::Env env, const Napi::Object& o, const char* key, const std::string& where, double dflt, bool required) {
  if (!o.Has(key) || o.Get(key).IsUndefined() || o.Get(key).IsNull()) {
    if (required) Fail(env, where + "." + key + " is required");
    return dflt;
  }
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) Fail(env, where + "." + key + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) Fail(env, where + "." + key + " must be finite");
  return d;
}

int64_t Int(Napi::Env env, const Napi::Object& o, const char* key, const std::string& where, int64_t dflt, bool required,
            int64_t lo, int64_t hi) {
  const double d = Num(env, o, key, where, static_cast<double>(dflt), required);
  if (d != std::floor(d) || d < static_cast<double>(lo) || d > static_cast<double>(hi))
    Fail(env, where + "." + key + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "] (got " +
                  std::to_string(d) + ")");
  return static_cast<int64_t>(d);
}

// A Float32Array of exactly `want` elements (want < 0: any length), or null when absent and optional.
const float* F32(Napi::Env env, const Napi::Object& o, const char* key, int64_t want, bool required, size_t* len = nullptr) {
  if (!o.Has(key) || o.Get(key).IsUndefined() || o.Get(key).IsNull()) {
    if (required) Fail(env, std::string("layer.") + key + " is required");
    return nullptr;
  }
  Napi::Value v = o.Get(key);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    Fail(env, std::string("layer.") + key + " must be a Float32Array");
  Napi::Float32Array a = v.As<Napi::Float32Array>();
  if (want >= 0 && static_cast<int64_t>(a.ElementLength()) != want)
    Fail(env, std::string("layer.") + key + " has " + std::to_string(a.ElementLength()) + " elements, expected " +
                  std::to_string(want));
  if (len) *len = a.ElementLength();
  return a.Data();
}

std::vector<std::vector<int64_t>> Pairs(Napi::Env env, const Napi::Object& o, const char* key) {
  std::vector<std::vector<int64_t>> out;
  if (!o.Has(key) || o.Get(key).IsUndefined() || o.Get(key).IsNull()) return out;
  if (!o.Get(key).IsArray()) Fail(env, std::string("layer.") + key + " must be an array of [a, b] pairs");
  Napi::Array arr = o.Get(key).As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value e = arr.Get(i);
    if (!e.IsArray() || e.As<Napi::Array>().Length() != 2)
      Fail(env, std::string("layer.") + key + "[" + std::to_string(i) + "] must be a pair [a, b]");
    std::vector<int64_t> pr;
    for (uint32_t j = 0; j < 2; ++j) {
      Napi::Value x = e.As<Napi::Array>().Get(j);
      const double d = x.IsNumber() ? x.As<Napi::Number>().DoubleValue() : NAN;
      if (!std::isfinite(d) || d != std::floor(d) || d < 0 || d > 9e15)
        Fail(env, std::string("layer.") + key + "[" + std::to_string(i) + "] must hold non-negative integers");
      pr.push_back(static_cast<int64_t>(d));
    }
    out.push_back(pr);
  }
  return out;
}

struct LayerArgs {
  LayerInputs in;
  std::vector<int64_t> positions;  // owned copy of slotPositions
};

void ReadLayer(Napi::Env env, Napi::Value v, LayerArgs& a) {
  if (!v.IsObject()) Fail(env, "layer must be an object");
  Napi::Object o = v.As<Napi::Object>();
  LayerInputs& in = a.in;
  const std::string w = "layer";
  in.num_heads = static_cast<int>(Int(env, o, "numHeads", w, 0, true, 1, 4096));
  in.num_kv_heads = static_cast<int>(Int(env, o, "numKvHeads", w, 0, true, 1, 4096));
  in.head_dim = static_cast<int>(Int(env, o, "headDim", w, 0, true, 1, 65536));
  in.seq_len = Int(env, o, "seqLen", w, 0, true, 1, int64_t{1} << 31);
  in.kv_capacity = Int(env, o, "kvCapacity", w, in.seq_len, false, 1, int64_t{1} << 31);
  if (in.num_heads % in.num_kv_heads) Fail(env, "layer.numHeads must be a multiple of layer.numKvHeads");
  if (in.kv_capacity < in.seq_len) Fail(env, "layer.kvCapacity must be >= layer.seqLen");
  in.keys = F32(env, o, "keys", int64_t{in.num_kv_heads} * in.kv_capacity * in.head_dim, true);
  const bool has_q = o.Has("queries") && !o.Get("queries").IsUndefined() && !o.Get("queries").IsNull();
  in.q_rows = Int(env, o, "qRows", w, has_q ? in.seq_len : 0, false, 0, in.seq_len);  // default: every slot
  in.queries = F32(env, o, "queries", int64_t{in.num_heads} * in.q_rows * in.head_dim, false);
  if (!in.queries) in.q_rows = 0;
  in.hidden_size = static_cast<int>(Int(env, o, "hiddenSize", w, 0, false, 0, 1 << 20));
  in.hidden_row0 = Int(env, o, "hiddenRow0", w, 0, false, 0, in.seq_len);
  in.hidden_rows = Int(env, o, "hiddenRows", w, in.seq_len - in.hidden_row0, false, 0, in.seq_len);
  if (o.Has("hidden") && !o.Get("hidden").IsUndefined() && !o.Get("hidden").IsNull()) {
    if (in.hidden_size < 1) Fail(env, "layer.hiddenSize is required with layer.hidden");
    if (in.hidden_row0 + in.hidden_rows > in.seq_len) Fail(env, "layer.hiddenRow0 + hiddenRows exceeds seqLen");
    in.hidden = F32(env, o, "hidden", in.hidden_rows * in.hidden_size, true);
  }
  for (const auto& p : Pairs(env, o, "spans")) in.spans.push_back({p[0], p[1]});
  for (const auto& p : Pairs(env, o, "spanGrids")) in.span_grids.push_back({p[0], p[1]});
  in.last_vision_index = Int(env, o, "lastVisionIndex", w, -1, false, -1, in.seq_len);
  if (o.Has("slotPositions") && !o.Get("slotPositions").IsUndefined() && !o.Get("slotPositions").IsNull()) {
    Napi::Value sp = o.Get("slotPositions");
    Napi::Object so = sp.As<Napi::Object>();
    uint32_t n = 0;
    if (sp.IsArray()) n = sp.As<Napi::Array>().Length();
    else if (sp.IsTypedArray()) n = static_cast<uint32_t>(sp.As<Napi::TypedArray>().ElementLength());
    else Fail(env, "layer.slotPositions must be an array of integers");
    if (n != in.seq_len) Fail(env, "layer.slotPositions must have seqLen entries");
    for (uint32_t i = 0; i < n; ++i) {
      Napi::Value x = so.Get(i);
      const double d = x.IsNumber() ? x.As<Napi::Number>().DoubleValue() : NAN;
      if (!std::isfinite(d) || d != std::floor(d)) Fail(env, "layer.slotPositions must hold integers");
      a.positions.push_back(static_cast<int64_t>(d));
    }
    in.slot_positions = a.positions.data();
  }
}

MethodParams ReadParams(Napi::Env env, const KvMethod& m, Napi::Value v) {
  MethodParams p = m.Defaults();
  if (v.IsUndefined() || v.IsNull()) return p;
  if (!v.IsObject()) Fail(env, "params must be an object");
  Napi::Object o = v.As<Napi::Object>();
  Napi::Array keys = o.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    const std::string k = keys.Get(i).ToString().Utf8Value();
    Napi::Value x = o.Get(k);
    if (x.IsUndefined()) continue;
    if (x.IsString()) SetParamString(p, k, x.As<Napi::String>().Utf8Value());
    else if (x.IsBoolean()) SetParam(p, k, x.As<Napi::Boolean>().Value() ? 1.0 : 0.0);
    else if (x.IsNumber()) SetParam(p, k, x.As<Napi::Number>().DoubleValue());
    else Fail(env, "params." + k + " must be a number, boolean or string");
  }
  return p;
}

Budget ReadBudget(Napi::Env env, Napi::Value v) {
  Budget b;
  if (v.IsNumber()) {
    b.percent = v.As<Napi::Number>().DoubleValue();
  } else if (v.IsObject()) {
    Napi::Object o = v.As<Napi::Object>();
    b.percent = Num(env, o, "percent", "budget", 100.0, false);
    b.cap_tokens = Int(env, o, "capTokens", "budget", -1, false, -1, int64_t{1} << 40);
    b.ref_len = Int(env, o, "refLen", "budget", -1, false, -1, int64_t{1} << 40);
  } else {
    Fail(env, "budget must be a number (percent) or { percent?, capTokens?, refLen? }");
  }
  if (!std::isfinite(b.percent) || b.percent < 0) Fail(env, "budget.percent must be a finite number >= 0");
  return b;
}

const char* GranName(Granularity g) {
  return g == Granularity::Shared ? "shared" : g == Granularity::QueryHead ? "query_head" : "kv_head";
}

Napi::Array FloatList(Napi::Env env, const std::vector<float>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (uint32_t i = 0; i < v.size(); ++i) a.Set(i, Napi::Number::New(env, v[i]));
  return a;
}

Napi::Value Nullable(Napi::Env env, double x) { return std::isnan(x) ? env.Null() : Napi::Number::New(env, x); }

Napi::Object TelemetryToJs(Napi::Env env, const Telemetry& t) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("temperature", Nullable(env, t.temperature));
  o.Set("entropy", Nullable(env, t.entropy));
  o.Set("maxEntropy", Nullable(env, t.max_entropy));
  o.Set("normalizedEntropy", Nullable(env, t.normalized_entropy));
  o.Set("lambdaEff", Nullable(env, t.lambda_eff));
  o.Set("miCur", FloatList(env, t.mi_cur));
  o.Set("miEma", FloatList(env, t.mi_ema));
  o.Set("groupWeights", FloatList(env, t.group_weights));
  o.Set("stability", FloatList(env, t.stability));
  o.Set("temporalStep", Napi::Number::New(env, static_cast<double>(t.temporal_step)));
  o.Set("profileStep", Napi::Number::New(env, static_cast<double>(t.profile_step)));
  o.Set("layerBudget", Napi::Number::New(env, static_cast<double>(t.layer_budget)));
  o.Set("branch", Napi::String::New(env, t.branch));
  Napi::Object arrays = Napi::Object::New(env);
  for (const DebugArray& d : t.arrays) {
    Napi::Object e = Napi::Object::New(env);
    Napi::Array shape = Napi::Array::New(env, d.shape.size());
    for (uint32_t i = 0; i < d.shape.size(); ++i) shape.Set(i, Napi::Number::New(env, static_cast<double>(d.shape[i])));
    Napi::Float32Array data = Napi::Float32Array::New(env, d.data.size());
    std::copy(d.data.begin(), d.data.end(), data.Data());
    e.Set("shape", shape);
    e.Set("data", data);
    arrays.Set(d.name, e);
  }
  o.Set("arrays", arrays);
  return o;
}

Napi::Array IndexLists(Napi::Env env, const std::vector<std::vector<int64_t>>& lists) {
  Napi::Array a = Napi::Array::New(env, lists.size());
  for (uint32_t i = 0; i < lists.size(); ++i) {
    Napi::Int32Array x = Napi::Int32Array::New(env, lists[i].size());
    for (size_t j = 0; j < lists[i].size(); ++j) x[j] = static_cast<int32_t>(lists[i][j]);
    a.Set(i, x);
  }
  return a;
}

class KvLayerState : public Napi::ObjectWrap<KvLayerState> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "KvLayerState",
                       {InstanceMethod<&KvLayerState::Reset>("reset"), InstanceMethod<&KvLayerState::Snapshot>("snapshot")});
  }
  explicit KvLayerState(const Napi::CallbackInfo& info) : Napi::ObjectWrap<KvLayerState>(info) {
    info.This().As<Napi::Object>().TypeTag(&kStateTag);
  }
  LayerState state;

 private:
  Napi::Value Reset(const Napi::CallbackInfo& info) {
    state.Reset();
    return info.Env().Undefined();
  }
  Napi::Value Snapshot(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("calls", Napi::Number::New(env, static_cast<double>(state.calls)));
    o.Set("temporalStep", Napi::Number::New(env, static_cast<double>(state.temporal_step)));
    o.Set("profileStep", Napi::Number::New(env, static_cast<double>(state.profile_step)));
    o.Set("miEma", FloatList(env, state.mi_ema));
    o.Set("patternEma", FloatList(env, state.pattern_ema));
    o.Set("patternShape", FloatList(env, {static_cast<float>(state.pattern_groups), static_cast<float>(state.pattern_len)}));
    o.Set("temperature", state.has_temperature ? Napi::Number::New(env, state.temperature) : env.Null());
    return o;
  }
};

template <typename F>
Napi::Value Guard(const Napi::CallbackInfo& info, F&& body) {
  try {
    return body(info.Env());
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), std::string("kv: ") + e.what());
  } catch (...) {
    throw Napi::Error::New(info.Env(), "kv: unknown native error");
  }
}

std::string MethodArg(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) Fail(info.Env(), "the first argument must be a method name");
  return info[0].As<Napi::String>().Utf8Value();
}

Napi::Value Methods(const Napi::CallbackInfo& info) {
  return Guard(info, [&](Napi::Env env) -> Napi::Value {
    const auto names = MethodNames();
    Napi::Array a = Napi::Array::New(env, names.size());
    for (uint32_t i = 0; i < names.size(); ++i) a.Set(i, Napi::String::New(env, names[i]));
    return a;
  });
}

Napi::Value Defaults(const Napi::CallbackInfo& info) {
  return Guard(info, [&](Napi::Env env) -> Napi::Value {
    const MethodParams p = GetMethod(MethodArg(info)).Defaults();
    Napi::Object o = Napi::Object::New(env);
    o.Set("window", p.window);
    o.Set("kernel", p.kernel);
    o.Set("pooling", p.pooling == Pooling::Avg ? "avgpool" : "maxpool");
    o.Set("granularity", GranName(p.granularity));
    o.Set("alpha", p.alpha);
    o.Set("saliency_temperature", p.saliency_temperature);
    o.Set("lambda", p.lambda);
    o.Set("profile_steps", p.profile_steps);
    o.Set("temporal", p.temporal);
    o.Set("aeb", p.aeb);
    o.Set("aeb_min", p.aeb_min);
    o.Set("aeb_max", p.aeb_max);
    o.Set("floor_alpha", p.floor_alpha);
    o.Set("pyramid_beta", p.pyramid_beta);
    o.Set("qr_rank", p.qr_rank);
    return o;
  });
}

Napi::Value Compress(const Napi::CallbackInfo& info) {
  return Guard(info, [&](Napi::Env env) -> Napi::Value {
    const KvMethod& m = GetMethod(MethodArg(info));
    if (info.Length() < 4) Fail(env, "kvCompress(method, params, budget, layer, state?)");
    const MethodParams p = ReadParams(env, m, info[1]);
    const Budget b = ReadBudget(env, info[2]);
    LayerArgs la;
    ReadLayer(env, info[3], la);
    LayerState scratch;
    LayerState* st = &scratch;
    if (info.Length() > 4 && !info[4].IsUndefined() && !info[4].IsNull()) {
      if (!info[4].IsObject() || !info[4].As<Napi::Object>().CheckTypeTag(&kStateTag))
        Fail(env, "state must be a KvLayerState");
      st = &KvLayerState::Unwrap(info[4].As<Napi::Object>())->state;
    }
    Selection sel;
    Telemetry tel;
    m.Compress(la.in, b, p, *st, sel, tel);
    Napi::Object o = Napi::Object::New(env);
    o.Set("compressed", sel.compressed);
    o.Set("granularity", GranName(sel.granularity));
    o.Set("cap", static_cast<double>(sel.cap));
    o.Set("window", static_cast<double>(sel.window));
    o.Set("pastLen", static_cast<double>(sel.past_len));
    o.Set("kKeep", static_cast<double>(sel.k_keep));
    o.Set("kept", IndexLists(env, sel.kept));
    o.Set("gatherOrder", IndexLists(env, sel.gather_order));
    o.Set("telemetry", TelemetryToJs(env, tel));
    return o;
  });
}

Napi::Value Prepass(const Napi::CallbackInfo& info) {
  return Guard(info, [&](Napi::Env env) -> Napi::Value {
    const KvMethod& m = GetMethod(MethodArg(info));
    if (info.Length() < 3) Fail(env, "kvPrepass(method, params, layer)");
    const MethodParams p = ReadParams(env, m, info[1]);
    LayerArgs la;
    ReadLayer(env, info[2], la);
    return Napi::Number::New(env, m.Prepass(la.in, p));
  });
}

Napi::Value LayerBudgets(const Napi::CallbackInfo& info) {
  return Guard(info, [&](Napi::Env env) -> Napi::Value {
    if (info.Length() < 3 || !info[0].IsArray() || !info[1].IsNumber())
      Fail(env, "kvLayerBudgets(gammas: number[], seqLen, budget, params?)");
    Napi::Array g = info[0].As<Napi::Array>();
    std::vector<double> gammas;
    for (uint32_t i = 0; i < g.Length(); ++i) {
      if (!g.Get(i).IsNumber()) Fail(env, "gammas must be numbers");
      gammas.push_back(g.Get(i).As<Napi::Number>().DoubleValue());
    }
    const double L = info[1].As<Napi::Number>().DoubleValue();
    if (!(L >= 1) || L != std::floor(L)) Fail(env, "seqLen must be a positive integer");
    const MethodParams p = ReadParams(env, GetMethod("vlcache"), info.Length() > 3 ? info[3] : env.Undefined());
    std::vector<double> betas;
    const auto budgets = AllocateLayerBudgets(gammas, static_cast<int64_t>(L), ReadBudget(env, info[2]), p, &betas);
    Napi::Object o = Napi::Object::New(env);
    Napi::Array bo = Napi::Array::New(env, budgets.size()), be = Napi::Array::New(env, betas.size());
    for (uint32_t i = 0; i < budgets.size(); ++i) bo.Set(i, Napi::Number::New(env, static_cast<double>(budgets[i])));
    for (uint32_t i = 0; i < betas.size(); ++i) be.Set(i, Napi::Number::New(env, betas[i]));
    o.Set("budgets", bo);
    o.Set("betas", be);
    return o;
  });
}

}  // namespace

void RegisterKv(Napi::Env env, Napi::Object exports) {
  exports.Set("kvMethods", Napi::Function::New(env, Methods, "kvMethods"));
  exports.Set("kvDefaults", Napi::Function::New(env, Defaults, "kvDefaults"));
  exports.Set("kvCompress", Napi::Function::New(env, Compress, "kvCompress"));
  exports.Set("kvPrepass", Napi::Function::New(env, Prepass, "kvPrepass"));
  exports.Set("kvLayerBudgets", Napi::Function::New(env, LayerBudgets, "kvLayerBudgets"));
  exports.Set("KvLayerState", KvLayerState::Define(env));
}

}  // namespace starkv::binding
