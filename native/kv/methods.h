// The registered method singletons (one stateless object per method; state lives in LayerState).
#pragma once

#include "kv/kv_method.h"

namespace starkv::kv {
const KvMethod& FullMethod();
const KvMethod& SnapKvMethod();
const KvMethod& PyramidKvMethod();
const KvMethod& H2oMethod();
const KvMethod& AdaKvMethod();
const KvMethod& VlCacheMethod();
const KvMethod& GuiKvMethod();
const KvMethod& StarKvMethod();

// VL-Cache post-vision sparsity gamma of one layer (shared by vlcache and STaR-KV's option).
double VlCacheSparsity(const LayerInputs& in, const MethodParams& p);
}  // namespace starkv::kv
