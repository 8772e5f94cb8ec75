// Persistent episodes (no compression): a second turn appended to the cache == one full prefill of
// both turns (M-RoPE continues from the logical length); a cancelled or failed turn leaves the episode
// as it was; after decoding, the cache holds every generated token except the last one sampled.
#include <atomic>
#include <cstdio>
#include <string>
#include <vector>

#include "golden_util.h"

using starkv::qwen2vl::GenerateRequest;
using starkv::qwen2vl::LoadSpec;
using starkv::qwen2vl::Model;

int main() {
  const std::string dir = gt::GoldenDir();
  const gt::StFile in(dir + "/inputs.safetensors");
  gt::Checker ck;
  for (const char* name : {"qwen2vl-tiny", "qwen2_5vl-tiny"}) {
    std::printf("%s\n", name);
    const std::string mdir = dir + "/" + name;
    LoadSpec s;
    s.config = gt::TinyConfig(std::string(name).find("qwen2_5vl") != std::string::npos, false);
    s.files = {mdir + "/model.safetensors"};
    s.tensors = gt::TensorTable(s.files[0], 0);
    s.threads = 2;
    Model m(s);
    std::vector<int32_t> t1 = {10, 20, 30, 501}, t2 = {40, 41, 501};
    t1.insert(t1.end(), 12, 500);
    t1.insert(t1.end(), {502, 50});
    t2.insert(t2.end(), 35, 500);
    t2.insert(t2.end(), {502, 60, 70});
    const auto pa = in.Get("pixel_values_A").f, pb = in.Get("pixel_values_B").f;
    GenerateRequest r1, r2, full;
    r1.ids = t1;
    r1.pixels = pa;
    r1.grids = {1, 6, 8};
    r1.max_new_tokens = 0;
    r2.ids = t2;
    r2.pixels = pb;
    r2.grids = {1, 10, 14};
    r2.max_new_tokens = 4;
    full.ids = t1;
    full.ids.insert(full.ids.end(), t2.begin(), t2.end());
    full.pixels = pa;
    full.pixels.insert(full.pixels.end(), pb.begin(), pb.end());
    full.grids = {1, 6, 8, 1, 10, 14};
    full.max_new_tokens = 4;
    const auto want = m.Generate(full, nullptr, nullptr);

    auto ep = m.NewEpisode();
    m.RunTurn(*ep, r1, nullptr, nullptr);
    const int64_t len1 = ep->kv.Length(0), tok1 = ep->kv.tokens, pos1 = ep->kv.next_position;
    ck.Expect(len1 == static_cast<int64_t>(t1.size()) && tok1 == len1, "turn 1 cached");
    // A turn cancelled before it starts, and one that fails validation, change nothing.
    std::atomic<bool> stop{true};
    const auto c = m.RunTurn(*ep, r2, nullptr, &stop);
    ck.Expect(c.stop_reason == "cancelled", "cancelled turn");
    ck.Expect(ep->kv.Length(0) == len1 && ep->kv.Length(1) == len1 && ep->kv.tokens == tok1 && ep->kv.next_position == pos1,
              "cancelled turn rolled back");
    GenerateRequest bad = r2;
    bad.pixels.resize(bad.pixels.size() - 1176);
    try {
      m.RunTurn(*ep, bad, nullptr, nullptr);
      ck.Expect(false, "bad turn throws");
    } catch (const std::exception&) {
    }
    ck.Expect(ep->kv.Length(0) == len1 && ep->kv.tokens == tok1 && ep->kv.next_position == pos1, "failed turn rolled back");
    // The real second turn == one full prefill.
    const auto got = m.RunTurn(*ep, r2, nullptr, nullptr);
    ck.Near("turn 2 on the cache == full prefill", got.prompt_logits_last.data(), want.prompt_logits_last.data(), 512, 1e-5);
    ck.Expect(got.tokens == want.tokens, "same greedy tokens");
    const int64_t total = static_cast<int64_t>(full.ids.size());
    const auto rope = m.Rope(full.ids.data(), total, full.grids.data(), 6);
    ck.Expect(ep->kv.tokens == total + 3 && ep->kv.Length(1) == total + 3 && ep->kv.next_position == total + rope.delta + 3,
              "all generated tokens but the last are cached; M-RoPE counter continues");
    // Cancelled while decoding: tokens so far; the cache holds all but the last sampled.
    auto ep2 = m.NewEpisode();
    std::atomic<bool> cancel{false};
    GenerateRequest r3 = full;
    r3.max_new_tokens = 50;
    int seen = 0;
    const auto d = m.RunTurn(*ep2, r3, [&](int32_t) { if (++seen == 3) cancel = true; }, &cancel);
    ck.Expect(d.stop_reason == "cancelled" && d.tokens.size() == 3, "cancel while decoding");
    ck.Expect(ep2->kv.tokens == total + 2 && ep2->kv.Length(0) == total + 2 && ep2->kv.Length(1) == total + 2,
              "cache consistent after a cancel while decoding");
  }
  return ck.Finish("episode_test");
}
