// The engine against Hugging Face transformers on the golden tiny checkpoints: every intermediate
// (patch embed, vision blocks, merger, vision output, M-RoPE ids, per-layer q/k/v/attention/output,
// final hidden, logits at all positions, step logits) and the 8 greedy tokens.
#include <cstdio>
#include <map>
#include <string>

#include "golden_util.h"

namespace {

using starkv::qwen2vl::GenerateRequest;
using starkv::qwen2vl::GenerateResult;
using starkv::qwen2vl::Model;

struct Case {
  const char* model;
  const char* prompt;
  bool bf16;
};

const char* PixelsKey(const std::string& prompt) {
  if (prompt == "p1_one_image") return "pixel_values_A";
  if (prompt == "p2_two_images") return "pixel_values_AB";
  return nullptr;
}

void RunCase(gt::Checker& ck, const std::string& dir, const Case& cs, const gt::StFile& inputs,
             std::map<std::string, std::unique_ptr<Model>>& models) {
  std::printf("%s.%s\n", cs.model, cs.prompt);
  auto& model = models[cs.model];
  if (!model) model = gt::LoadTiny(dir + "/" + cs.model);
  const gt::StFile g(dir + "/" + cs.model + "." + cs.prompt + ".safetensors");
  GenerateRequest req;
  for (int64_t v : g.Get("input_ids").i) req.ids.push_back(static_cast<int32_t>(v));
  const int64_t L = static_cast<int64_t>(req.ids.size());
  if (const char* pk = PixelsKey(cs.prompt)) {
    req.pixels = inputs.Get(pk).f;
    for (int64_t v : g.Get("image_grid_thw").i) req.grids.push_back(static_cast<int32_t>(v));
  }
  req.max_new_tokens = 8;
  req.trace = true;

  // M-RoPE position ids and delta: exact.
  const auto rope = model->Rope(req.ids.data(), L, req.grids.data(), static_cast<int64_t>(req.grids.size()));
  const auto want_pos = g.Get("position_ids").i;
  bool same = static_cast<int64_t>(want_pos.size()) == 3 * L;
  for (int64_t i = 0; same && i < 3 * L; ++i) same = rope.pos[i] == want_pos[i];
  ck.Expect(same, "position_ids");
  ck.Expect(rope.delta == g.Get("rope_deltas").i[0], "rope_deltas");

  GenerateResult r = model->Generate(req, nullptr, nullptr);
  const auto want_tokens = g.Get("generate.new_tokens").i;
  bool tok_ok = r.tokens.size() == want_tokens.size();
  for (size_t i = 0; tok_ok && i < r.tokens.size(); ++i) tok_ok = r.tokens[i] == want_tokens[i];
  std::printf("  %s tokens:", tok_ok ? "ok  " : "FAIL");
  for (int32_t t : r.tokens) std::printf(" %d", t);
  std::printf("\n");
  ck.Expect(tok_ok, "greedy tokens");
  ck.Expect(r.stop_reason == "length", "stop reason length");

  const double tol = cs.bf16 ? 2e-2 : 1e-4;
  const auto step = g.Get("generate.step_logits");
  ck.Near("prompt_logits_last", r.prompt_logits_last.data(), step.f.data(), step.shape[1], tol);
  const auto& tr = r.trace->arrays;
  for (const auto& kv : g.entries()) {
    std::string name = kv.first;
    const bool wanted = name.rfind("vision.", 0) == 0 || name.rfind("text.", 0) == 0 || name == "logits" ||
                        name == "generate.step_logits";
    if (!wanted || kv.second.dtype == "I64") continue;
    if (name == "vision.rot_pos_emb" || name == "text.rope_cos" || name == "text.rope_sin") continue;
    std::string key = name;
    if (name == "text.hidden_states.2") key = "text.final_hidden";
    else if (name == "text.hidden_states.1") continue;  // = text.layer.0.output
    const auto want = g.Get(name);
    auto it = tr.find(key);
    if (it == tr.end()) {
      ck.Expect(false, "trace lacks " + key);
      continue;
    }
    if (static_cast<int64_t>(it->second.data.size()) != want.Numel()) {
      ck.Expect(false, key + " has " + std::to_string(it->second.data.size()) + " values, want " +
                           std::to_string(want.Numel()));
      continue;
    }
    ck.Near(key, it->second.data.data(), want.f.data(), want.Numel(), tol);
  }
}

}  // namespace

int main() {
  const std::string dir = gt::GoldenDir();
  std::printf("golden data: %s\n", dir.c_str());
  const gt::StFile inputs(dir + "/inputs.safetensors");
  gt::Checker ck;
  std::map<std::string, std::unique_ptr<Model>> models;
  const Case cases[] = {
      {"qwen2vl-tiny", "p0_text", false},         {"qwen2vl-tiny", "p1_one_image", false},
      {"qwen2vl-tiny", "p2_two_images", false},   {"qwen2_5vl-tiny", "p0_text", false},
      {"qwen2_5vl-tiny", "p1_one_image", false},  {"qwen2_5vl-tiny", "p2_two_images", false},
      {"qwen2vl-tiny-tied", "p1_one_image", false}, {"qwen2vl-tiny-bf16", "p2_two_images", true},
      {"qwen2_5vl-tiny-bf16", "p2_two_images", true},
  };
  // STARKV_GOLDEN_MODELS=a,b runs only those checkpoints' cases (the emulated run takes one).
  const std::vector<std::string> pick = gt::PickFromEnv("STARKV_GOLDEN_MODELS", {});
  for (const Case& c : cases) {
    if (!pick.empty() && std::find(pick.begin(), pick.end(), c.model) == pick.end()) continue;
    try {
      RunCase(ck, dir, c, inputs, models);
    } catch (const std::exception& e) {
      ck.Expect(false, std::string(c.model) + "." + c.prompt + " threw: " + e.what());
    }
  }
  return ck.Finish("qwen2vl_golden_test");
}
