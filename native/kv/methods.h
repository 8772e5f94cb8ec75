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
// VL-Cache's counts on the host keys: zeros[h * rows + i] = the causally visible keys of query row i
// (slot L - rows + i) whose eager-softmax probability (<q,k> * d^-0.5, fp32) is not above `threshold`.
void VlCacheZeroCounts(const LayerInputs& in, int64_t rows, float threshold, std::vector<int64_t>& zeros);
// The layer's gamma from those counts: per head 1 - above/valid (fp32 mean), fp32 mean over the heads.
double VlCacheGammaFromZeros(const std::vector<int64_t>& zeros, int num_heads, int64_t rows, int64_t seq_len);
// GUI-KV's residuals on the host keys: res[g * n + i] = || k - Q Q^T k || for k = KV head g's key of slot
// positions[i] and Q the Gram-Schmidt basis of its keys of slots [cur_start, cur_start + rank).
void GuiKvResiduals(const LayerInputs& in, int64_t cur_start, int rank, const std::vector<int64_t>& positions,
                    std::vector<float>& res);
}  // namespace starkv::kv
