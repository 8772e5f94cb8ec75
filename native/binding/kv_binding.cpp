// N-API surface of the KV compression methods (owned by the KV work; filled in there).
#include <napi.h>
namespace starkv::binding {
void RegisterKv(Napi::Env env, Napi::Object exports) {}
}  // namespace starkv::binding
