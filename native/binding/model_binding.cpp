// N-API surface of the model engine (owned by the engine work; filled in there).
#include <napi.h>
namespace starkv::binding {
void RegisterModel(Napi::Env env, Napi::Object exports) {}
}  // namespace starkv::binding
