// "full": no compression (every slot stays). A method like the others so callers need no special case.
#include "kv/methods.h"
#include "kv/snapkv_core.h"

namespace starkv::kv {
namespace {

class Full final : public KvMethod {
 public:
  const char* Name() const override { return "full"; }
  MethodParams Defaults() const override { return MethodParams(); }
  void Compress(const LayerInputs& in, const Budget&, const MethodParams&, LayerState& state, Selection& out,
                Telemetry& tel) const override {
    ValidateLayer(in, 0);
    state.calls++;
    NoCompression(in, in.seq_len, out, tel);
    tel.branch = "full";
  }
};

}  // namespace

const KvMethod& FullMethod() {
  static const Full m;
  return m;
}

}  // namespace starkv::kv
