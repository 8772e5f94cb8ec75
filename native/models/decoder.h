// The text decoder: a block of new tokens through every layer, appending their keys/values to the
// KV store and attending to every stored slot (causal only inside the new block); final norm and head.
#pragma once

#include <atomic>
#include <cstdint>

#include "core/backend.h"
#include "core/kv_store.h"
#include "models/qwen2vl_config.h"
#include "models/qwen2vl_weights.h"
#include "models/trace.h"

namespace starkv::qwen2vl {

// Where a block's rows go in the trace arrays ([.., L, ..] of the whole prompt).
struct TraceRows {
  Trace* trace = nullptr;
  int64_t row0 = 0;   // first row of this block
  int64_t total = 0;  // L
};

// Sees each layer's queries (post-rotary, [n][heads*hd]) and attention input (post input_layernorm,
// [n][hidden]) for a block of n new tokens starting at sequence index first_token (KV compression).
class LayerObserver {
 public:
  virtual ~LayerObserver() = default;
  virtual void OnLayer(int layer, const float* q, const float* x, int64_t n, int64_t first_token) = 0;
};

class TextDecoder {
 public:
  TextDecoder(const Config& c, const TextWeights& w, Backend& be) : c_(c), w_(w), be_(be) {}

  // h: [n, D] embeddings in, last layer's residual stream out. pos_*: M-RoPE positions of the n rows.
  // Appends n slots (token indices kv.tokens ...) to every layer; advances kv.tokens by n.
  // Checks `cancel` between layers (throws starkv::Cancelled).
  void Forward(float* h, int64_t n, const int32_t* pos_t, const int32_t* pos_h, const int32_t* pos_w, KvStore& kv,
               const TraceRows& tr, const std::atomic<bool>* cancel, LayerObserver* observer = nullptr);
  // y = RMSNorm(h; norm) for n rows.
  void FinalNorm(const float* h, int64_t n, float* y);
  // logits[n, V] = y . lm_head^T
  void Logits(const float* y, int64_t n, float* logits);
  void Embed(const int32_t* ids, int64_t n, float* out);

 private:
  void ForwardLayers(float* h, int64_t n, const float* cos, const float* sin, KvStore& kv, const TraceRows& tr,
                     const std::atomic<bool>* cancel, LayerObserver* observer, int64_t first_token);

  const Config& c_;
  const TextWeights& w_;
  Backend& be_;
};

}  // namespace starkv::qwen2vl
