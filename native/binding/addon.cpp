// N-API entry point: each part of the engine registers its own classes and functions.
#include <napi.h>

namespace starkv::binding {
void RegisterModel(Napi::Env env, Napi::Object exports);
void RegisterKv(Napi::Env env, Napi::Object exports);
}  // namespace starkv::binding

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  starkv::binding::RegisterModel(env, exports);
  starkv::binding::RegisterKv(env, exports);
  return exports;
}

NODE_API_MODULE(starkv, Init)
