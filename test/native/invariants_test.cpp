// Self-checks of spec 8.4 that need no reference: prefill N + decode 1 == prefill N+1, chunked prefill
// == one pass, old vs new tensor names, two images together == apart, window-size invariance, thread
// counts, oneDNN vs built-in GEMM.
#include <cstdio>
#include <string>
#include <vector>

#include "golden_util.h"

using starkv::qwen2vl::GenerateRequest;
using starkv::qwen2vl::GenerateResult;
using starkv::qwen2vl::LoadSpec;
using starkv::qwen2vl::Model;

namespace {

LoadSpec Spec(const std::string& dir, int threads = 2) {
  const bool qv25 = dir.find("qwen2_5vl") != std::string::npos;
  LoadSpec s;
  s.config = gt::TinyConfig(qv25, dir.find("tied") != std::string::npos);
  s.files = {dir + "/model.safetensors"};
  s.tensors = gt::TensorTable(s.files[0], 0);
  s.threads = threads;
  return s;
}

GenerateRequest Req(const std::vector<int32_t>& ids, const gt::StFile* in, const char* px, std::vector<int32_t> grids,
                    int new_tokens, bool trace = false) {
  GenerateRequest r;
  r.ids = ids;
  if (px) r.pixels = in->Get(px).f;
  r.grids = std::move(grids);
  r.max_new_tokens = new_tokens;
  r.trace = trace;
  return r;
}

std::vector<int32_t> Prompt2() {  // p2_two_images
  std::vector<int32_t> ids = {11, 12, 13, 501};
  ids.insert(ids.end(), 12, 500);
  ids.insert(ids.end(), {502, 21, 22, 501});
  ids.insert(ids.end(), 35, 500);
  ids.insert(ids.end(), {502, 31, 32, 33, 34});
  return ids;
}

}  // namespace

int main() {
  const std::string dir = gt::GoldenDir();
  const gt::StFile in(dir + "/inputs.safetensors");
  gt::Checker ck;
  const std::vector<int32_t> grids_ab = {1, 6, 8, 1, 10, 14};
  const std::vector<int32_t> ids = Prompt2();
  for (const char* name : {"qwen2vl-tiny", "qwen2_5vl-tiny"}) {
    std::printf("%s\n", name);
    const std::string mdir = dir + "/" + name;
    Model m(Spec(mdir));
    // Prefill N, then decode: step logits 1 == prefill of N+1 (prompt + first token).
    GenerateResult a = m.Generate(Req(ids, &in, "pixel_values_AB", grids_ab, 3, true), nullptr, nullptr);
    auto ids1 = ids;
    ids1.push_back(a.tokens[0]);
    GenerateResult b = m.Generate(Req(ids1, &in, "pixel_values_AB", grids_ab, 1), nullptr, nullptr);
    const auto& steps = a.trace->arrays.at("generate.step_logits").data;
    ck.Near("decode 1 == prefill N+1", steps.data() + 512, b.prompt_logits_last.data(), 512, 1e-5);
    // Chunked prefill (chunks of 7 through the KV store) == one pass.
    LoadSpec sc = Spec(mdir);
    sc.prefill_chunk = 7;
    Model mc(sc);
    GenerateResult c = mc.Generate(Req(ids, &in, "pixel_values_AB", grids_ab, 3), nullptr, nullptr);
    ck.Near("chunked prefill == one pass", c.prompt_logits_last.data(), a.prompt_logits_last.data(), 512, 1e-5);
    ck.Expect(c.tokens == a.tokens, "chunked prefill: same tokens");
    // New-layout names: identical logits.
    Model mn(Spec(mdir + "-newnames"));
    GenerateResult n = mn.Generate(Req(ids, &in, "pixel_values_AB", grids_ab, 3), nullptr, nullptr);
    ck.Expect(n.prompt_logits_last == a.prompt_logits_last && n.tokens == a.tokens, "old vs new names: identical");
    // Two images in one call == two calls.
    const auto both = m.EncodeImages(in.Get("pixel_values_AB").f.data(), 188 * 1176, grids_ab.data(), 6, nullptr);
    const int32_t ga[] = {1, 6, 8}, gb[] = {1, 10, 14};
    auto ea = m.EncodeImages(in.Get("pixel_values_A").f.data(), 48 * 1176, ga, 3, nullptr);
    const auto eb = m.EncodeImages(in.Get("pixel_values_B").f.data(), 140 * 1176, gb, 3, nullptr);
    ea.insert(ea.end(), eb.begin(), eb.end());
    ck.Near("two images together == apart", both.data(), ea.data(), static_cast<int64_t>(ea.size()), 1e-6);
    // Thread counts and GEMM paths: same greedy tokens, logits within noise.
    for (int threads : {1, 3}) {
      Model mt(Spec(mdir, threads));
      GenerateResult t = mt.Generate(Req(ids, &in, "pixel_values_AB", grids_ab, 3), nullptr, nullptr);
      ck.Near("threads " + std::to_string(threads), t.prompt_logits_last.data(), a.prompt_logits_last.data(), 512, 1e-6);
      ck.Expect(t.tokens == a.tokens, "threads: same tokens");
    }
    LoadSpec sb = Spec(mdir);
    sb.use_dnnl = false;
    Model mb(sb);
    GenerateResult t = mb.Generate(Req(ids, &in, "pixel_values_AB", grids_ab, 3), nullptr, nullptr);
    ck.Near("builtin GEMM == oneDNN", t.prompt_logits_last.data(), a.prompt_logits_last.data(), 512, 1e-5);
  }
  {
    // QV25: every block full => output independent of the window size; a window covering the whole
    // image => same as every block full.
    const std::string mdir = dir + "/qwen2_5vl-tiny";
    auto enc = [&](int window, std::vector<int> full) {
      LoadSpec s = Spec(mdir);
      s.config.vision.window_size = window;
      s.config.vision.fullatt_block_indexes = std::move(full);
      Model m(s);
      return m.EncodeImages(in.Get("pixel_values_AB").f.data(), 188 * 1176, grids_ab.data(), 6, nullptr);
    };
    const auto f56 = enc(56, {0, 1, 2, 3}), f112 = enc(112, {0, 1, 2, 3}), w1000 = enc(28 * 40, {1, 3});
    ck.Near("all-full: window 56 == window 112", f56.data(), f112.data(), static_cast<int64_t>(f56.size()), 1e-6);
    ck.Near("window >= image == all-full", w1000.data(), f56.data(), static_cast<int64_t>(f56.size()), 1e-6);
    const auto w56 = enc(56, {1, 3});
    ck.Expect(gt::RelErr(w56.data(), f56.data(), static_cast<int64_t>(f56.size())) > 1e-3, "windows do change the output");
  }
  return ck.Finish("invariants_test");
}
