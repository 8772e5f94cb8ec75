// The decoder's KV cache: per layer, keys (after rotary) and values as [kv_heads, capacity, head_dim]
// fp32 (never expanded to query heads), and per slot the sequence index of the token it came from.
// Slots are kept in sequence order; compression (native/kv) may remove slots, so each layer has its
// own physical length. The logical length (next M-RoPE position) is kept apart from both.
#pragma once

#include <cstdint>
#include <vector>

#include "core/backend.h"
#include "core/memory.h"

namespace starkv {

class KvStore {
 public:
  KvStore(Backend* backend, int layers, int kv_heads, int head_dim);

  int layers() const { return static_cast<int>(layers_.size()); }
  Backend* backend() const { return backend_; }
  int kv_heads() const { return kv_heads_; }
  int head_dim() const { return head_dim_; }
  int64_t capacity() const { return capacity_; }
  int64_t Length(int layer) const { return layers_[layer].length; }
  float* Keys(int layer) { return layers_[layer].k.f(); }    // [kv_heads][capacity][head_dim]
  float* Values(int layer) { return layers_[layer].v.f(); }  // same
  int64_t* SlotTokens(int layer) { return layers_[layer].tokens.as<int64_t>(); }  // [capacity]
  int64_t KHeadStride() const { return capacity_ * head_dim_; }

  // Grows every layer to at least `capacity` slots, keeping stored slots.
  void Reserve(int64_t capacity);
  // Appends n slots to `layer`: rows i of k and v ([n][kv_heads*head_dim] at row stride `row`),
  // token index first_token + i. Grows the capacity (doubling) when needed.
  void Append(int layer, const float* k, const float* v, int64_t row, int64_t n, int64_t first_token);
  // After a compaction of the layer's slots in place (native/kv CompactLayer).
  void SetLength(int layer, int64_t length);
  void Clear();

  int64_t tokens = 0;         // sequence index of the next token to append (all tokens seen)
  int64_t next_position = 0;  // M-RoPE position of the next text token (logical length)

 private:
  struct Layer {
    Buffer k, v, tokens;
    int64_t length = 0;
  };
  Backend* backend_;
  int kv_heads_, head_dim_;
  int64_t capacity_ = 0;
  std::vector<Layer> layers_;
};

}  // namespace starkv
