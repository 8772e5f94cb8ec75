// Argument checking for the N-API surface: every accessor names the field that is missing or wrong
// and throws a JS error (never a crash on bad input).
#pragma once

#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace starkv::binding {

[[noreturn]] inline void Fail(Napi::Env env, const std::string& m) { throw Napi::Error::New(env, m); }

inline bool Present(const Napi::Object& o, const char* k) { return o.Has(k) && !o.Get(k).IsUndefined() && !o.Get(k).IsNull(); }

inline double Num(const Napi::Object& o, const char* k, const std::string& where, bool required, double dflt) {
  if (!Present(o, k)) {
    if (required) Fail(o.Env(), where + "." + k + " is required");
    return dflt;
  }
  if (!o.Get(k).IsNumber()) Fail(o.Env(), where + "." + k + " must be a number");
  const double d = o.Get(k).As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) Fail(o.Env(), where + "." + k + " must be finite");
  return d;
}

inline int64_t Int(const Napi::Object& o, const char* k, const std::string& where, bool required, int64_t dflt, int64_t lo,
            int64_t hi) {
  const double d = Num(o, k, where, required, static_cast<double>(dflt));
  if (d != std::floor(d) || d < static_cast<double>(lo) || d > static_cast<double>(hi))
    Fail(o.Env(), where + "." + k + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return static_cast<int64_t>(d);
}

inline std::string Str(const Napi::Object& o, const char* k, const std::string& where) {
  if (!Present(o, k) || !o.Get(k).IsString()) Fail(o.Env(), where + "." + k + " must be a string");
  return o.Get(k).As<Napi::String>().Utf8Value();
}

inline Napi::Object Obj(const Napi::Object& o, const char* k, const std::string& where) {
  if (!Present(o, k) || !o.Get(k).IsObject()) Fail(o.Env(), where + "." + k + " must be an object");
  return o.Get(k).As<Napi::Object>();
}

inline Napi::Array Arr(const Napi::Object& o, const char* k, const std::string& where) {
  if (!Present(o, k) || !o.Get(k).IsArray()) Fail(o.Env(), where + "." + k + " must be an array");
  return o.Get(k).As<Napi::Array>();
}

inline int64_t ArrInt(Napi::Array a, uint32_t i, const std::string& where, int64_t lo, int64_t hi) {
  Napi::Value v = a.Get(i);
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!(d == std::floor(d)) || d < static_cast<double>(lo) || d > static_cast<double>(hi))
    Fail(a.Env(), where + "[" + std::to_string(i) + "] must be an integer in [" + std::to_string(lo) + ", " +
                      std::to_string(hi) + "]");
  return static_cast<int64_t>(d);
}

template <class T, napi_typedarray_type kType>
std::vector<T> Typed(Napi::Value v, const std::string& what, bool required) {
  if (v.IsUndefined() || v.IsNull()) {
    if (required) Fail(v.Env(), what + " is required");
    return {};
  }
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != kType)
    Fail(v.Env(), what + (kType == napi_int32_array ? " must be an Int32Array" : " must be a Float32Array"));
  auto a = v.As<Napi::TypedArrayOf<T>>();
  return std::vector<T>(a.Data(), a.Data() + a.ElementLength());
}
inline auto Ints(Napi::Value v, const std::string& w, bool req) { return Typed<int32_t, napi_int32_array>(v, w, req); }
inline auto Floats(Napi::Value v, const std::string& w, bool req) { return Typed<float, napi_float32_array>(v, w, req); }

}  // namespace starkv::binding
