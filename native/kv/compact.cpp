// In-place compaction of one layer's KV store by a Selection (see compact.h).
#include "kv/compact.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "kv/kernels.h"

namespace starkv::kv {

int64_t CompactLayer(float* keys, float* values, int num_kv_heads, int64_t capacity, int head_dim, int64_t seq_len,
                     const Selection& sel, int64_t* slot_positions) {
  if (num_kv_heads <= 0 || head_dim <= 0 || seq_len < 0 || seq_len > capacity)
    throw KvError("CompactLayer: bad store geometry");
  if (!sel.compressed) return seq_len;
  if (sel.past_len + sel.window != seq_len) throw KvError("CompactLayer: the selection was made for another length");
  if (sel.granularity == Granularity::QueryHead)
    throw KvError("CompactLayer: a per-query-head selection cannot be stored in the GQA layout");
  const bool shared = sel.granularity == Granularity::Shared;
  if (shared ? sel.kept.size() != 1 : sel.kept.size() != static_cast<size_t>(num_kv_heads))
    throw KvError("CompactLayer: selection has " + std::to_string(sel.kept.size()) + " lists");
  const size_t n0 = sel.kept[0].size();
  for (const auto& l : sel.kept) {
    if (l.size() != n0) throw KvError("CompactLayer: ragged per-head selections need a per-head store");
    for (size_t i = 0; i < l.size(); ++i)
      if (l[i] < 0 || l[i] >= sel.past_len || (i && l[i] <= l[i - 1]))
        throw KvError("CompactLayer: kept slots must be ascending and inside the past");
  }
  if (slot_positions)
    for (const auto& l : sel.kept)
      if (l != sel.kept[0]) throw KvError("CompactLayer: heads keep different slots; slot positions must be per head");
  const int64_t new_len = static_cast<int64_t>(n0) + sel.window;
  for (int g = 0; g < num_kv_heads; ++g) {
    const std::vector<int64_t>& l = sel.kept[shared ? 0 : g];
    for (float* base : {keys, values}) {
      if (!base) continue;
      float* h = base + static_cast<int64_t>(g) * capacity * head_dim;
      for (int64_t dst = 0; dst < new_len; ++dst) {  // sources ascend and src >= dst: forward in place is safe
        const int64_t s = k::CompactSource(dst, l.data(), static_cast<int64_t>(n0), sel.past_len);
        if (dst != s) std::memmove(h + dst * head_dim, h + s * head_dim, sizeof(float) * head_dim);
      }
    }
  }
  if (slot_positions) {
    const std::vector<int64_t>& l = sel.kept[0];
    for (int64_t dst = 0; dst < new_len; ++dst)
      slot_positions[dst] = slot_positions[k::CompactSource(dst, l.data(), static_cast<int64_t>(n0), sel.past_len)];
  }
  return new_len;
}

}  // namespace starkv::kv
