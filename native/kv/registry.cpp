// Method registry: name -> stateless method object (static table, no mutable global state).
#include <string>

#include "kv/methods.h"

namespace starkv::kv {

double KvMethod::Prepass(const LayerInputs&, const MethodParams&) const {
  throw KvError(std::string("method '") + Name() + "' has no per-layer pre-pass");
}

namespace {
struct Entry {
  const char* name;
  const KvMethod& (*get)();
};
constexpr Entry kMethods[] = {
    {"full", FullMethod},         {"snapkv", SnapKvMethod},   {"pyramidkv", PyramidKvMethod},
    {"h2o", H2oMethod},           {"adakv", AdaKvMethod},     {"vlcache", VlCacheMethod},
    {"guikv", GuiKvMethod},       {"starkv", StarKvMethod},
};
}  // namespace

const KvMethod* FindMethod(const std::string& name) {
  for (const Entry& e : kMethods)
    if (name == e.name) return &e.get();
  return nullptr;
}

const KvMethod& GetMethod(const std::string& name) {
  if (const KvMethod* m = FindMethod(name)) return *m;
  std::string known;
  for (const Entry& e : kMethods) known += (known.empty() ? "" : ", ") + std::string(e.name);
  throw KvError("unknown KV compression method '" + name + "' (known: " + known + ")");
}

std::vector<std::string> MethodNames() {
  std::vector<std::string> out;
  for (const Entry& e : kMethods) out.push_back(e.name);
  return out;
}

}  // namespace starkv::kv
