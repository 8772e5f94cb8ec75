// Compressed persistent episodes on whatever backend the build and machine give, and the contract that
// lets a KV store in device memory be compressed without copying its keys to the host.
//  1. Every method, keys-free (how a KV store in device memory is compressed): with LayerInputs::keys
//     null and the hooks given (window_sums, zero_counts, key_residuals, accumulated_sums, computed here
//     by the host code on a copy), it selects exactly what it selects with the keys and asks each hook
//     only where it needs it; a method denied the one hook it needs (and the keys) refuses with an error
//     that names what it reads.
//  2. Every method, three turns of a tiny model on one persistent compressed cache, with device "auto"
//     (a CUDA GPU when one is usable: scoring and compaction on the device) against device "cpu": the
//     same slots kept in every layer at every turn, the same greedy tokens. Without a GPU, "auto" is the
//     CPU and the line says so.
//  3. What the decoder hands KV compression (TurnStash): only the last q_keep query rows and the frame
//     rows' norms of each prefill block, with the frame split across blocks and blocks with no frame row.
#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "golden_util.h"
#include "kv/kv_method.h"
#include "kv/methods.h"
#include "kv/snapkv_core.h"
#include "models/episode.h"

using namespace starkv;
using starkv::qwen2vl::GenerateRequest;
using starkv::qwen2vl::LoadSpec;
using starkv::qwen2vl::Model;

namespace {

struct Synth {  // one layer: 2 KV heads x 4 query heads, two frames (4x6 and 5x6 merged grids) and text
  int H = 4, Hkv = 2, d = 32;
  int64_t L = 80, cap = 96, q_rows = 40;
  std::vector<float> keys, queries, norms;
  Synth() {
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    keys.resize(static_cast<size_t>(Hkv * cap * d));
    queries.resize(static_cast<size_t>(H * q_rows * d));
    norms.resize(30);
    for (auto& v : keys) v = nd(rng);
    for (auto& v : queries) v = nd(rng);
    for (auto& v : norms) v = 1.0f + std::abs(nd(rng));
  }
  kv::LayerInputs Inputs() const {
    kv::LayerInputs in;
    in.num_heads = H;
    in.num_kv_heads = Hkv;
    in.head_dim = d;
    in.seq_len = L;
    in.keys = keys.data();
    in.kv_capacity = cap;
    in.queries = queries.data();
    in.q_rows = q_rows;
    in.spans = {{3, 27}, {40, 70}};
    in.span_grids = {{4, 6}, {5, 6}};
    in.hidden = norms.data();
    in.hidden_size = 1;
    in.hidden_row0 = 40;
    in.hidden_rows = 30;
    in.last_vision_index = 70;
    return in;
  }
};

// The budget pre-pass (VL-Cache) and the selection, as the engine runs them on one layer.
kv::Selection Select(const kv::KvMethod& m, const kv::LayerInputs& in, const kv::Budget& b, kv::MethodParams p) {
  if (m.NeedsPrepass(p)) p.layer_budget = kv::AllocateLayerBudgets({m.Prepass(in, p)}, in.seq_len, b, p)[0];
  kv::LayerState st;
  kv::Selection sel;
  kv::Telemetry tel;
  m.Compress(in, b, p, st, sel, tel);
  return sel;
}

void KeysFreeContract(gt::Checker& ck) {
  const Synth s;
  const kv::Budget b{30.0};
  std::vector<std::string> cases = kv::MethodNames();
  cases.push_back("starkv+vlcache_layer_budgets");  // STaR-KV with VL-Cache's pre-pass
  for (const std::string& name : cases) {
    const bool budgets = name == "starkv+vlcache_layer_budgets";
    const kv::KvMethod& m = kv::GetMethod(budgets ? "starkv" : name);
    kv::MethodParams p = m.Defaults();
    p.vlcache_layer_budgets = budgets;
    const kv::LayerInputs with = s.Inputs();
    const kv::Selection want = Select(m, with, b, p);
    kv::LayerInputs without = with;
    int calls = 0, zero_calls = 0, residual_calls = 0, acc_calls = 0;
    without.window_sums = [&](int64_t W, std::vector<float>& sums) {
      ++calls;
      kv::WindowAttentionSums(with, W, sums);
    };
    without.zero_counts = [&](int64_t rows, float threshold, std::vector<int64_t>& zeros) {
      ++zero_calls;
      kv::VlCacheZeroCounts(with, rows, threshold, zeros);
    };
    without.key_residuals = [&](int64_t cur_start, int rank, const std::vector<int64_t>& positions,
                                std::vector<float>& res) {
      ++residual_calls;
      kv::GuiKvResiduals(with, cur_start, rank, positions, res);
    };
    without.accumulated_sums = [&](int64_t rows, std::vector<float>& sums) {
      ++acc_calls;
      ck.Expect(rows == with.q_rows, (name + ": accumulated attention over every query row").c_str());
      kv::AccumulatedAttentionSums(with, sums);
    };
    without.keys = nullptr;
    const kv::Selection got = Select(m, without, b, p);
    ck.Expect(got.kept == want.kept && got.window == want.window && got.compressed == want.compressed,
              (name + ": keys-free selection == selection with keys").c_str());
    const bool h2o = name == "h2o";
    ck.Expect(name == "full" || h2o ? calls == 0 : calls == 1,
              (name + ": window sums asked " + std::to_string(calls) + " times").c_str());
    ck.Expect(zero_calls == (name == "vlcache" || budgets ? 1 : 0), (name + ": sparsity counts asked " +
              std::to_string(zero_calls) + " times (VL-Cache's pre-pass only)").c_str());
    ck.Expect(residual_calls == (name == "guikv" ? 1 : 0), (name + ": key residuals asked " +
              std::to_string(residual_calls) + " times (GUI-KV's temporal step only)").c_str());
    ck.Expect(acc_calls == (h2o ? 1 : 0), (name + ": accumulated attention asked " + std::to_string(acc_calls) +
              " times (H2O only)").c_str());
  }
  // Without the keys and without the one hook it reads them through, a method refuses and says why.
  kv::LayerInputs bare = s.Inputs();
  bare.keys = nullptr;
  bare.window_sums = [&](int64_t W, std::vector<float>& sums) { kv::WindowAttentionSums(s.Inputs(), W, sums); };
  std::string err;
  try {
    Select(kv::H2oMethod(), bare, b, kv::H2oMethod().Defaults());
  } catch (const std::exception& e) {
    err = e.what();
  }
  ck.Expect(err.find("attention sums reads the keys on the host") != std::string::npos,
            ("h2o without host keys or accumulated_sums refuses: " + err).c_str());
}

LoadSpec Spec(const std::string& dir, const std::string& device) {
  LoadSpec s;
  s.config = gt::TinyConfig(dir.find("qwen2_5vl") != std::string::npos, false);
  s.files = {dir + "/model.safetensors"};
  s.tensors = gt::TensorTable(s.files[0], 0);
  // STARKV_KV_TEST_THREADS (default 2): host threads, also those compressing layers. The emulator's race
  // check (kernels/emu/run.sh --ci) sets 1: with one host thread the launches and the device blocks they
  // reuse come in the same order in every run, so their traces can be compared.
  const char* threads = std::getenv("STARKV_KV_TEST_THREADS");
  s.threads = threads && *threads ? std::atoi(threads) : 2;
  s.device = device;
  return s;
}

std::vector<GenerateRequest> Turns(const gt::StFile& in) {
  const auto pa = in.Get("pixel_values_A").f, pb = in.Get("pixel_values_B").f;
  std::vector<GenerateRequest> turns(3);
  const int32_t text[3][3] = {{10, 20, 30}, {40, 41, 42}, {43, 44, 45}};
  for (int t = 0; t < 3; ++t) {
    GenerateRequest& r = turns[t];
    const bool a = t != 1;
    r.ids = {text[t][0], text[t][1], 501};
    r.ids.insert(r.ids.end(), a ? 12 : 35, 500);
    r.ids.insert(r.ids.end(), {502, text[t][2], 60, 70, 80, 90, 91, 92, 93});
    r.pixels = a ? pa : pb;
    r.grids = a ? std::vector<int32_t>{1, 6, 8} : std::vector<int32_t>{1, 10, 14};
    r.max_new_tokens = 3;
  }
  return turns;
}

struct Run {
  std::vector<std::vector<std::vector<int64_t>>> kept;  // [turn][layer] slot tokens
  std::vector<std::vector<int32_t>> tokens;             // [turn]
};

Run RunEpisode(Model& m, const std::vector<GenerateRequest>& turns, const std::string& method) {
  Run r;
  auto ep = m.NewEpisode();
  for (GenerateRequest req : turns) {
    const kv::KvMethod& km = kv::GetMethod(method);
    req.kv.method = &km;
    req.kv.params = qwen2vl::PolicyParams(km, {}, {});
    req.kv.budget = kv::Budget{40.0};
    const auto res = m.RunTurn(*ep, req, nullptr, nullptr);
    r.tokens.push_back(res.tokens);
    r.kept.emplace_back();
    for (const auto& l : res.layers) r.kept.back().push_back(l.slot_tokens);
  }
  return r;
}

// Where two runs first keep different slots: the turn, the layer and the slots only one of them kept.
void PrintFirstDifference(const Run& want, const Run& got) {
  for (size_t t = 0; t < want.kept.size() && t < got.kept.size(); ++t)
    for (size_t l = 0; l < want.kept[t].size() && l < got.kept[t].size(); ++l) {
      const auto& a = want.kept[t][l];
      const auto& b = got.kept[t][l];
      if (a == b) continue;
      std::string only_a, only_b;
      for (int64_t x : a)
        if (std::find(b.begin(), b.end(), x) == b.end()) only_a += " " + std::to_string(x);
      for (int64_t x : b)
        if (std::find(a.begin(), a.end(), x) == a.end()) only_b += " " + std::to_string(x);
      std::printf("    first difference: turn %zu layer %zu (%zu vs %zu slots); only on the CPU:%s; only on the device:%s\n", t, l,
                  a.size(), b.size(), only_a.c_str(), only_b.c_str());
      return;
    }
}

void DeviceEpisodes(gt::Checker& ck) {
  const std::string dir = gt::GoldenDir();
  const gt::StFile in(dir + "/inputs.safetensors");
  const std::vector<GenerateRequest> turns = Turns(in);
  for (const std::string& name : gt::PickFromEnv("STARKV_KV_TEST_MODELS", {"qwen2vl-tiny", "qwen2_5vl-tiny"})) {
    const std::string mdir = dir + "/" + name;
    Model cpu(Spec(mdir, "cpu")), dev(Spec(mdir, "auto"));
    std::printf("%s: device \"auto\" is %s%s%s\n", name.c_str(), dev.device().c_str(),
                dev.device_note().empty() ? "" : ": ", dev.device_note().c_str());
    for (const std::string& method : gt::PickFromEnv("STARKV_KV_TEST_METHODS", kv::MethodNames())) {
      const Run want = RunEpisode(cpu, turns, method), got = RunEpisode(dev, turns, method);
      bool evicted = false;
      for (size_t t = 0; t < want.kept.size(); ++t)
        for (const auto& l : want.kept[t]) evicted = evicted || (!l.empty() && static_cast<int64_t>(l.size()) < l.back() + 1);
      ck.Expect(method == "full" || evicted, (name + " " + method + ": the budget evicts slots").c_str());
      ck.Expect(got.kept == want.kept, (name + " " + method + " on " + dev.device() +
                                        ": the same slots kept in every layer and turn as on the CPU").c_str());
      ck.Expect(got.tokens == want.tokens, (name + " " + method + ": the same greedy tokens").c_str());
      std::printf("  %s on %s: %s\n", method.c_str(), dev.device().c_str(),
                  got.kept == want.kept && got.tokens == want.tokens ? "same as the CPU" : "DIFFERS from the CPU");
      PrintFirstDifference(want, got);
      std::fflush(stdout);
    }
  }
}

void StashRows(gt::Checker& ck) {
  using qwen2vl::TurnStash;
  const int heads = 2, hd = 3, row = heads * hd;
  TurnStash st(/*layers=*/1, heads, hd, /*q_keep=*/4, qwen2vl::FrameSpan{10, 50, 5, 8}, true);
  // The prompt: 60 tokens in blocks of 32, 20 and 8 (a chunked prefill); the frame is tokens [10, 50).
  const std::vector<std::pair<int64_t, int64_t>> blocks = {{0, 32}, {32, 20}, {52, 8}};
  const std::vector<std::array<int64_t, 3>> want = {{28, 10, 32}, {16, 0, 18}, {4, 0, 0}};
  for (size_t b = 0; b < blocks.size(); ++b) {
    const auto [first, n] = blocks[b];
    const auto r = st.Needs(n, first);
    ck.Expect(r.q_from == want[b][0] && r.norm_lo == want[b][1] && r.norm_hi == want[b][2],
              ("block " + std::to_string(b) + ": the rows asked for").c_str());
    std::vector<float> q(static_cast<size_t>((n - r.q_from) * row)), norms(static_cast<size_t>(r.norm_hi - r.norm_lo));
    for (size_t i = 0; i < q.size(); ++i) q[i] = static_cast<float>((first + r.q_from) * row + i);  // = token*row + col
    for (size_t i = 0; i < norms.size(); ++i) norms[i] = static_cast<float>(first + r.norm_lo + i);  // = token
    st.OnLayer(0, q.data(), norms.data(), r, n, first);
  }
  bool norms_ok = st.Norms(0).size() == 40;
  for (int64_t t = 10; norms_ok && t < 50; ++t) norms_ok = st.Norms(0)[t - 10] == static_cast<float>(t);
  ck.Expect(norms_ok, "every frame token's norm, from the two blocks that hold the frame");
  const std::vector<float> qs = st.Queries(0);  // [heads][4][hd] of tokens 56..59
  bool q_ok = st.QRows(0) == 4;
  for (int h = 0; q_ok && h < heads; ++h)
    for (int i = 0; i < 4; ++i)
      for (int d = 0; d < hd; ++d) q_ok = q_ok && qs[(h * 4 + i) * hd + d] == static_cast<float>((56 + i) * row + h * hd + d);
  ck.Expect(q_ok, "the queries of the last 4 tokens, head-major");
  TurnStash none(1, heads, hd, 4, qwen2vl::FrameSpan{}, false);
  const auto r = none.Needs(3, 7);
  ck.Expect(r.q_from == 0 && r.norm_lo == 0 && r.norm_hi == 0, "no frame: no norms; a block shorter than q_keep: all its queries");
}

}  // namespace

int main() {
  gt::Checker ck;
  StashRows(ck);
  KeysFreeContract(ck);
  DeviceEpisodes(ck);
  return ck.Finish("episode_kv_test");
}
