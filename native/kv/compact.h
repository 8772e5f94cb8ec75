// Applies a Selection to one layer's KV store in the native layout [num_kv_heads][capacity][head_dim]
// (in place, order of kept slots preserved), for the engine's persistent cache.
#pragma once

#include <cstdint>

#include "kv/kv_types.h"

namespace starkv::kv {

// Keeps, per KV head, the selected past slots (ascending) followed by the window [past_len, seq_len).
// Shared selections apply to every head; KvHead selections need the same count per head.
// QueryHead selections cannot be stored in the GQA layout and are rejected (use granularity
// kv_head or shared). slot_positions ([capacity], optional) is compacted alongside; it needs one
// list shared by all heads (a KvHead selection whose heads differ is rejected when it is given).
// Returns the new length. keys and values may be null (a store in device memory: this validates the
// selection and compacts slot_positions; the backend moves the rows, Backend::KvCompact).
int64_t CompactLayer(float* keys, float* values, int num_kv_heads, int64_t capacity, int head_dim, int64_t seq_len,
                     const Selection& sel, int64_t* slot_positions);

}  // namespace starkv::kv
