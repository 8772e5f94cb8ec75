// Prompt prefill (in chunks, through the KV store) and token-by-token generation.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>
#include <string>

#include "core/error.h"
#include "core/kv_store.h"
#include "models/qwen2vl_model.h"

namespace starkv::qwen2vl {
namespace {

double MsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

GenerateResult Model::Generate(const GenerateRequest& req, const std::function<void(int32_t)>& on_token,
                               const std::atomic<bool>* cancel) {
  Episode ep(backend_.get(), c_);
  return RunTurn(ep, req, on_token, cancel);
}

GenerateResult Model::RunTurn(Episode& ep, const GenerateRequest& req, const std::function<void(int32_t)>& on_token,
                              const std::atomic<bool>* cancel) {
  using clock = std::chrono::steady_clock;
  KvStore& kv = ep.kv;
  const int64_t first_token = kv.tokens;
  GenerateResult res;
  const int64_t L = static_cast<int64_t>(req.ids.size());
  const int64_t D = c_.hidden, V = c_.vocab;
  res.prompt_tokens = L;
  if (req.trace) res.trace = std::make_unique<Trace>();
  Trace* trace = res.trace.get();

  // Validate everything before any heavy work.
  const std::vector<ImageGrid> grids =
      ParseGrids(req.grids.data(), static_cast<int64_t>(req.grids.size()), c_.vision);
  CheckPrompt(c_, req.ids.data(), L, grids);
  if (req.max_new_tokens < 0) throw Error("maxNewTokens must be >= 0");
  const int64_t limit = PositionLimit(c_);
  if (kv.next_position + L + req.max_new_tokens > limit)
    throw Error("the prompt (" + std::to_string(L) + " tokens" +
                (kv.next_position ? " after " + std::to_string(kv.next_position) + " positions of the episode" : std::string()) +
                ") plus " + std::to_string(req.max_new_tokens) + " new tokens exceeds the engine's limit of " +
                std::to_string(limit) + " positions");
  if (grids.empty() && !req.pixels.empty()) throw Error("pixels were given without image grids");
  const RopeIndex rope = ComputeRopeIndex(c_, req.ids.data(), L, grids, kv.next_position, first_token);
  // Where this turn's screenshots sit (sequence indices, merged grids); the last one is the current frame.
  std::vector<FrameSpan> frames;
  for (int64_t i = 0, g = 0; i < L; ++i)
    if (req.ids[i] == c_.image_token && (i == 0 || req.ids[i - 1] != c_.image_token)) {
      const ImageGrid& gr = grids[static_cast<size_t>(g++)];
      const int64_t m = c_.vision.spatial_merge_size, rows = gr.h / m, cols = gr.w / m, n = gr.t * rows * cols;
      frames.push_back({first_token + i, first_token + i + n, rows, cols});
      i += n - 1;
    }

  // A turn that fails or is cancelled before its prefill completes leaves the episode as it was.
  std::vector<int64_t> lengths0(static_cast<size_t>(c_.layers));
  for (int l = 0; l < c_.layers; ++l) lengths0[l] = kv.Length(l);
  const int64_t tokens0 = kv.tokens, position0 = kv.next_position;
  const size_t frames0 = ep.frames.size();
  auto rollback = [&] {
    for (int l = 0; l < c_.layers; ++l) kv.SetLength(l, lengths0[l]);
    kv.tokens = tokens0;
    kv.next_position = position0;
    ep.frames.resize(frames0);
  };

  try {
    std::vector<float> logits(static_cast<size_t>(V));
    Buffer lg_dev = backend_->Alloc(MemCategory::Activations, V);
    Buffer h, y;
    std::unique_ptr<TurnStash> stash;
    clock::time_point t1;
    try {
      // Vision.
      Buffer img;
      if (!grids.empty()) {
        const auto t0 = clock::now();
        img = EncodeToBackend(req.pixels.data(), static_cast<int64_t>(req.pixels.size()), grids, cancel, trace);
        res.vision_ms = MsSince(t0);
      }
      // Prefill.
      t1 = clock::now();
      int64_t held = 0;
      for (int l = 0; l < c_.layers; ++l) held = std::max(held, kv.Length(l));
      kv.Reserve(held + L + std::min<int64_t>(req.max_new_tokens, 256));
      ep.frames.insert(ep.frames.end(), frames.begin(), frames.end());
      if (req.kv.method)
        stash = std::make_unique<TurnStash>(c_.layers, c_.heads, c_.head_dim, 64,
                                            frames.empty() ? FrameSpan{} : frames.back(), !frames.empty());
      const int64_t chunk = trace ? L : std::min(prefill_chunk_, L);
      h = backend_->Alloc(MemCategory::Activations, chunk * D);
      y = backend_->Alloc(MemCategory::Activations, chunk * D);
      int64_t img_row = 0;
      const int32_t* pt = rope.pos.data();
      for (int64_t c0 = 0; c0 < L; c0 += chunk) {
        const int64_t n = std::min(chunk, L - c0);
        decoder_->Embed(req.ids.data() + c0, n, h.f());
        std::vector<int64_t> at;  // image pads of this chunk take the next merged image tokens
        for (int64_t i = 0; i < n; ++i)
          if (req.ids[c0 + i] == c_.image_token) at.push_back(i);
        backend_->CopyRows(img.f() + img_row * D, D, nullptr, h.f(), D, at.data(), static_cast<int64_t>(at.size()), D);
        img_row += static_cast<int64_t>(at.size());
        if (trace) backend_->Download(h.f(), sizeof(float) * n * D, trace->Get("text.hidden_states.0", {L, D}) + c0 * D);
        decoder_->Forward(h.f(), n, pt + c0, pt + L + c0, pt + 2 * L + c0, kv, TraceRows{trace, c0, L}, cancel,
                          stash.get());
        if (trace) {
          decoder_->FinalNorm(h.f(), n, y.f());
          backend_->Download(y.f(), sizeof(float) * n * D, trace->Get("text.final_hidden", {L, D}) + c0 * D);
          Buffer lg = backend_->Alloc(MemCategory::Activations, n * V);
          decoder_->Logits(y.f(), n, lg.f());
          backend_->Download(lg.f(), sizeof(float) * n * V, trace->Get("logits", {L, V}) + c0 * V);
        }
        if (c0 + n == L) {
          decoder_->FinalNorm(h.f() + (n - 1) * D, 1, y.f());
          decoder_->Logits(y.f(), 1, lg_dev.f());
          backend_->Download(lg_dev.f(), sizeof(float) * V, logits.data());
        }
      }
      kv.next_position = rope.next;
    } catch (...) {
      rollback();
      throw;
    }
    res.prompt_logits_last = logits;
    res.prefill_ms = MsSince(t1);
    ++ep.turns;
    if (stash) {
      const auto tc = clock::now();
      res.layers = CompressTurn(ep, req.kv, *stash, c_, backend_->Threads());
      res.compress_ms = MsSince(tc);
    }

    // Decode.
    const auto t2 = clock::now();
    std::mt19937_64 rng(req.seed);
    std::vector<float> work(static_cast<size_t>(V));
    std::vector<float> steps;  // traced: the logits each token was chosen from
    res.stop_reason = "length";
    while (static_cast<int64_t>(res.tokens.size()) < req.max_new_tokens) {
      if (cancel && cancel->load(std::memory_order_relaxed)) throw Cancelled();
      std::copy(logits.begin(), logits.end(), work.begin());
      if (trace) steps.insert(steps.end(), logits.begin(), logits.end());
      const int32_t tok = backend_->Sample(work.data(), V, req.sample, rng);
      res.tokens.push_back(tok);
      if (on_token) on_token(tok);
      if (std::find(req.stop_tokens.begin(), req.stop_tokens.end(), tok) != req.stop_tokens.end()) {
        res.stop_reason = "stop";
        break;
      }
      if (static_cast<int64_t>(res.tokens.size()) >= req.max_new_tokens) break;
      if (cancel && cancel->load(std::memory_order_relaxed)) throw Cancelled();
      const int32_t p = static_cast<int32_t>(kv.next_position);
      decoder_->Embed(&tok, 1, h.f());
      decoder_->Forward(h.f(), 1, &p, &p, &p, kv, TraceRows{}, cancel);
      kv.next_position += 1;
      decoder_->FinalNorm(h.f(), 1, y.f());
      decoder_->Logits(y.f(), 1, lg_dev.f());
      backend_->Download(lg_dev.f(), sizeof(float) * V, logits.data());
    }
    res.decode_ms = MsSince(t2);
    res.kv_bytes = ep.HeldBytes();
    if (trace && !steps.empty()) {
      const int64_t ns = static_cast<int64_t>(steps.size()) / V;
      std::copy(steps.begin(), steps.end(), trace->Put("generate.step_logits", {ns, V}));
    }
  } catch (const Cancelled&) {
    res.stop_reason = "cancelled";
  }
  return res;
}

}  // namespace starkv::qwen2vl
