// A persistent episode: one KV store kept across turns, the per-layer compression state, and where
// each screenshot's tokens came from. After every turn's prefill the store is compressed layer by layer
// to its budget (native/kv), using the turn's observation window; the reply is decoded against it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/kv_store.h"
#include "kv/kv_method.h"
#include "models/decoder.h"
#include "models/qwen2vl_config.h"

namespace starkv::qwen2vl {

struct FrameSpan {  // a screenshot's tokens [start, end) (sequence indices) and its merged grid
  int64_t start = 0, end = 0;
  int64_t rows = 0, cols = 0;
};

struct KvPolicy {
  const kv::KvMethod* method = nullptr;  // nullptr: keep everything
  kv::MethodParams params;
  kv::Budget budget;
};

struct LayerReport {
  bool compressed = false;
  int64_t cap = -1;  // the layer's own budget, window included (its share where the method splits it)
  std::vector<int64_t> slot_tokens;  // source token of every slot the layer holds afterwards
  kv::Telemetry tel;
};

// Collects what compression needs from each layer while a turn is prefilled (in chunks): the queries
// of the turn's last `q_keep` tokens and the L2 norms of the current frame's attention inputs.
class TurnStash : public LayerObserver {
 public:
  TurnStash(int layers, int heads, int head_dim, int64_t q_keep, FrameSpan frame, bool has_frame);
  Rows Needs(int64_t n, int64_t first_token) const override;
  void OnLayer(int layer, const float* q, const float* norms, const Rows& rows, int64_t n, int64_t first_token) override;
  int64_t QRows(int layer) const { return static_cast<int64_t>(q_[layer].size()) / (heads_ * hd_); }
  // [heads][rows][hd] of the last QRows() tokens.
  std::vector<float> Queries(int layer) const;
  const std::vector<float>& Norms(int layer) const { return norms_[layer]; }
  bool has_frame() const { return has_frame_; }
  const FrameSpan& frame() const { return frame_; }

 private:
  int heads_, hd_;
  int64_t q_keep_;
  FrameSpan frame_;
  bool has_frame_;
  std::vector<std::vector<float>> q_;      // per layer [rows][heads*hd], the last q_keep rows
  std::vector<std::vector<float>> norms_;  // per layer [frame length]
};

class Episode {
 public:
  Episode(Backend* backend, const Config& c);
  KvStore kv;
  std::vector<kv::LayerState> states;
  std::vector<FrameSpan> frames;
  int64_t turns = 0;
  // Empties the cache and forgets the frames; the per-layer method state (STaR-KV's EMAs and step
  // counts) stays: the papers' protocol re-prefills each step but keeps that state for the episode.
  void ClearCache();
  void Reset();  // ClearCache() and the method state back to a new episode's

  // Bytes of keys + values the layers hold now, and what they would hold without eviction.
  int64_t HeldBytes() const;
};

// Compresses every layer of the episode's store after a turn's prefill (layers spread over `threads`
// threads; the result does not depend on it); returns a report per layer.
std::vector<LayerReport> CompressTurn(Episode& ep, const KvPolicy& policy, const TurnStash& stash, const Config& c,
                                      int threads = 1);

// The method's defaults with overrides by name (numbers/booleans; strings for enum options).
kv::MethodParams PolicyParams(const kv::KvMethod& m, const std::vector<std::pair<std::string, double>>& nums,
                              const std::vector<std::pair<std::string, std::string>>& strs);

}  // namespace starkv::qwen2vl
