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

// Sees, for each layer, what KV compression reads of a block of n new tokens starting at sequence index
// first_token: the rotated queries of its last rows and the L2 norms of some rows' attention inputs (post
// input_layernorm). Only those rows leave the backend (on a GPU, a few rows and one float per row
// instead of every row's queries and hidden state).
class LayerObserver {
 public:
  // Rows of the block (0 .. n-1): queries of rows [q_from, n), norms of rows [norm_lo, norm_hi).
  struct Rows {
    int64_t q_from = 0;
    int64_t norm_lo = 0, norm_hi = 0;
  };
  virtual ~LayerObserver() = default;
  virtual Rows Needs(int64_t n, int64_t first_token) const = 0;
  // q: [n - rows.q_from][heads*hd] (host memory); norms: [rows.norm_hi - rows.norm_lo] (host memory).
  virtual void OnLayer(int layer, const float* q, const float* norms, const Rows& rows, int64_t n,
                       int64_t first_token) = 0;
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
