// Bad checkpoints and bad requests become starkv::Error with a message naming what is wrong (never a
// crash); cancellation; streaming callback; memory accounting; two models side by side; and, where a CUDA
// device is usable (a GPU, or kernels/emu/run.sh's emulator with an emulated device size), a full device:
// loading and prefill fail with "out of memory" naming what did not fit, and nothing is lost after.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "golden_util.h"

#ifdef STARKV_HAVE_CUDA
#include "../../kernels/kv/kv_kernels.h"
#include "cuda_backend.h"  // kernels/
#endif

using starkv::qwen2vl::GenerateRequest;
using starkv::qwen2vl::LoadSpec;
using starkv::qwen2vl::Model;

namespace {

LoadSpec Spec(const std::string& dir) {
  LoadSpec s;
  s.config = gt::TinyConfig(dir.find("qwen2_5vl") != std::string::npos, false);
  s.files = {dir + "/model.safetensors"};
  s.tensors = gt::TensorTable(s.files[0], 0);
  s.threads = 2;
  return s;
}

template <class F>
void ExpectError(gt::Checker& ck, const std::string& what, const std::string& needle, F f) {
  try {
    f();
    ck.Expect(false, what + ": no error");
  } catch (const starkv::Error& e) {
    const bool ok = std::string(e.what()).find(needle) != std::string::npos;
    if (!ok) std::printf("  message: %s\n", e.what());
    ck.Expect(ok, what + " mentions '" + needle + "'");
  } catch (const std::exception& e) {
    ck.Expect(false, what + ": wrong exception type: " + e.what());
  }
}

#ifdef STARKV_HAVE_CUDA
// Under kernels/emu/run.sh: how many calls so far would have made a real runtime create a device context
// (absent from the engine's own build).
extern "C" long starkv_emu_context_calls() __attribute__((weak));

// The app's host lists the GPUs when it starts, whichever device the model then uses: that list must not
// leave a context (GPU memory) on every device. Free memory comes only when asked for.
void DeviceQuery(gt::Checker& ck) {
  const long before = starkv_emu_context_calls ? starkv_emu_context_calls() : 0;
  const auto plain = starkv::cuda::QueryCudaInfo();
  bool unasked = true;
  for (const auto& d : plain.devices) unasked = unasked && d.free_bytes == -1 && d.total_bytes > 0;
  ck.Expect(unasked, "device list: total memory, and free memory only when asked for");
  if (starkv_emu_context_calls)
    ck.Expect(starkv_emu_context_calls() == before, "device list without free memory: no call that creates a context");
  const auto full = starkv::cuda::QueryCudaInfo(true);
  bool asked = full.devices.size() == plain.devices.size();
  for (const auto& d : full.devices) asked = asked && d.free_bytes > 0 && d.free_bytes <= d.total_bytes;
  ck.Expect(asked, "device list with free memory: 0 < free <= total on every device");
  if (starkv_emu_context_calls && !full.devices.empty())
    ck.Expect(starkv_emu_context_calls() > before, "free memory asks the device (the emulator counts the calls)");
}

// Takes every byte of device 0 that can be had (large blocks while they fit, then 64 KiB ones) and gives
// it back when it goes: what the engine meets beside another process that filled the GPU.
struct Ballast {
  std::vector<void*> blocks;
  size_t bytes = 0;
  static size_t FreeBytes() {
    const auto info = starkv::cuda::QueryCudaInfo(true);
    return info.devices.empty() ? 0 : static_cast<size_t>(info.devices[0].free_bytes);
  }
  bool Take(size_t n) {
    try {
      blocks.push_back(starkv::cuda::kv::DeviceAlloc(n));
      bytes += n;
      return true;
    } catch (const std::exception&) {
      return false;
    }
  }
  Ballast() {
    for (size_t n = FreeBytes(); n >= (size_t(1) << 20);)
      if (!Take(n)) n /= 2;
      else n = FreeBytes();
    for (int i = 0; i < 1 << 14 && Take(size_t(64) << 10); ++i) {
    }
  }
  ~Ballast() {
    for (void* p : blocks) starkv::cuda::kv::DeviceFree(p);
  }
};

void FullDevice(gt::Checker& ck, const std::string& mdir, const GenerateRequest& r) {
  std::string reason;
  if (starkv::cuda::CountDevices(&reason) == 0) {
    std::printf("full device: not run (%s)\n", reason.c_str());
    return;
  }
  const std::string name = starkv::cuda::kv::DeviceName(0);
  if (name.find("emulator") != std::string::npos && !std::getenv("STARKV_EMU_DEVICE_BYTES")) {
    ck.Expect(false, "full device: the emulator needs STARKV_EMU_DEVICE_BYTES (kernels/emu/run.sh sets it)");
    return;
  }
  LoadSpec s = Spec(mdir);
  s.device = "cuda";
  {
    Ballast full;
    std::printf("full device on %s: %.1f MiB taken\n", name.c_str(), full.bytes / 1048576.0);
    ExpectError(ck, "loading onto a full device", "out of memory", [&] { Model m(s); });
    ExpectError(ck, "loading onto a full device", "weights (", [&] { Model m(s); });
    // "auto": the weights do not fit the GPU, so the model runs on the CPU, says why, and answers as a
    // CPU model does; the GPU copies made before the failure are gone from the account
    LoadSpec sa = Spec(mdir), sc = Spec(mdir);
    sa.device = "auto";
    sc.device = "cpu";
    Model ma(sa), mc(sc);
    const std::string& note = ma.device_note();
    ck.Expect(ma.device() == "cpu" && note.find("cuda:0") == 0 && note.find("do not fit") != std::string::npos &&
                  note.find("out of memory") != std::string::npos,
              "auto on a full device: the CPU, and the note says the weights did not fit (" + note + ")");
    const auto ga = ma.Generate(r, nullptr, nullptr), gc = mc.Generate(r, nullptr, nullptr);
    ck.Expect(ga.tokens == gc.tokens && ga.prompt_logits_last == gc.prompt_logits_last,
              "auto on a full device: the same answer as a CPU model");
    ck.Expect(ma.memory().Get(starkv::MemCategory::Weights).current == mc.memory().Get(starkv::MemCategory::Weights).current,
              "auto on a full device: weights accounted as on the CPU (no device copies left)");
  }
  Model m(s);  // room again: it loads
  {
    Ballast full;
    ExpectError(ck, "prefill on a full device", "out of memory", [&] { m.Generate(r, nullptr, nullptr); });
  }
  const auto& acc = m.memory();
  ck.Expect(acc.Get(starkv::MemCategory::Activations).current == 0 && acc.Get(starkv::MemCategory::Kv).current == 0,
            "full device: the failed call left no activations or KV allocated");
  const auto after = m.Generate(r, nullptr, nullptr);  // room again: the same model answers as a fresh one
  Model fresh(s);
  const auto want = fresh.Generate(r, nullptr, nullptr);
  ck.Expect(after.tokens == want.tokens && after.prompt_logits_last == want.prompt_logits_last,
            "full device: after the failure the model answers exactly as a freshly loaded one");
}
#endif

}  // namespace

int main() {
  const std::string dir = gt::GoldenDir();
  const std::string mdir = dir + "/qwen2vl-tiny";
  gt::Checker ck;
#ifdef STARKV_HAVE_CUDA
  DeviceQuery(ck);  // first: nothing else has touched a device yet
#endif

  // ---- checkpoints ----
  ExpectError(ck, "missing file", "nope.safetensors", [&] {
    LoadSpec s = Spec(mdir);
    s.files = {mdir + "/nope.safetensors"};
    Model m(s);
  });
  ExpectError(ck, "missing tensor", "model.language_model.layers.1.mlp.up_proj.weight", [&] {
    LoadSpec s = Spec(mdir);
    for (size_t i = 0; i < s.tensors.size(); ++i)
      if (s.tensors[i].name == "model.language_model.layers.1.mlp.up_proj.weight") s.tensors.erase(s.tensors.begin() + i);
    Model m(s);
  });
  ExpectError(ck, "wrong shape", "expected [128, 64]", [&] {
    LoadSpec s = Spec(mdir);
    s.config.intermediate = 128;
    for (auto& t : s.tensors)
      if (t.name == "model.language_model.layers.0.mlp.gate_proj.weight") {
        t.shape = {64, 128};
      }
    Model m(s);
  });
  ExpectError(ck, "bytes outside the file", "outside the file", [&] {
    LoadSpec s = Spec(mdir);
    s.tensors[3].offset += 1u << 30;
    Model m(s);
  });
  ExpectError(ck, "byte count", "do not hold", [&] {
    LoadSpec s = Spec(mdir);
    s.tensors[0].nbytes += 2;
    Model m(s);
  });
  ExpectError(ck, "file index", "file index 3", [&] {
    LoadSpec s = Spec(mdir);
    s.tensors[0].file = 3;
    Model m(s);
  });
  {
    // A truncated copy of the checkpoint.
    const std::string tmp = "/tmp/starkv_truncated_" + std::to_string(getpid()) + ".safetensors";
    {
      std::ifstream src(mdir + "/model.safetensors", std::ios::binary);
      std::vector<char> bytes((std::istreambuf_iterator<char>(src)), std::istreambuf_iterator<char>());
      std::ofstream dst(tmp, std::ios::binary);
      dst.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
    }
    ExpectError(ck, "truncated checkpoint", "truncated", [&] {
      LoadSpec s = Spec(mdir);
      s.files = {tmp};
      Model m(s);
    });
    std::remove(tmp.c_str());
  }
  ExpectError(ck, "bad config", "numKvHeads", [&] {
    LoadSpec s = Spec(mdir);
    s.config.kv_heads = 3;
    Model m(s);
  });
  ExpectError(ck, "bad mrope", "mropeSection", [&] {
    LoadSpec s = Spec(mdir);
    s.config.mrope[2] = 4;
    Model m(s);
  });

  // ---- requests ----
  Model m(Spec(mdir));
  const gt::StFile in(dir + "/inputs.safetensors");
  auto req = [&](std::vector<int32_t> ids, bool image) {
    GenerateRequest r;
    r.ids = std::move(ids);
    if (image) {
      r.pixels = in.Get("pixel_values_A").f;
      r.grids = {1, 6, 8};
    }
    r.max_new_tokens = 4;
    return r;
  };
  std::vector<int32_t> p1 = {10, 20, 30, 40, 501};
  p1.insert(p1.end(), 12, 500);
  p1.insert(p1.end(), {502, 50, 60, 70});
  ExpectError(ck, "id outside the vocabulary", "outside the vocabulary [0, 512)", [&] { m.Generate(req({1, 512}, false), nullptr, nullptr); });
  ExpectError(ck, "negative id", "id -1", [&] { m.Generate(req({1, -1}, false), nullptr, nullptr); });
  ExpectError(ck, "empty prompt", "empty", [&] { m.Generate(req({}, false), nullptr, nullptr); });
  ExpectError(ck, "pads without images", "image(s) need 0", [&] { m.Generate(req(p1, false), nullptr, nullptr); });
  ExpectError(ck, "too few pads", "need 12", [&] { m.Generate(req({1, 501, 500, 500, 502}, true), nullptr, nullptr); });
  ExpectError(ck, "pixels size", "patch rows", [&] {
    auto r = req(p1, true);
    r.pixels.resize(r.pixels.size() - 1176);
    m.Generate(r, nullptr, nullptr);
  });
  ExpectError(ck, "pixels not whole patches", "whole number", [&] {
    auto r = req(p1, true);
    r.pixels.resize(r.pixels.size() - 1);
    m.Generate(r, nullptr, nullptr);
  });
  ExpectError(ck, "odd grid", "multiples of the merge size", [&] {
    auto r = req(p1, true);
    r.grids = {1, 5, 8};
    m.Generate(r, nullptr, nullptr);
  });
  ExpectError(ck, "negative grid", "positive", [&] {
    auto r = req(p1, true);
    r.grids = {1, -6, 8};
    m.Generate(r, nullptr, nullptr);
  });
  ExpectError(ck, "grid count", "3 numbers", [&] {
    auto r = req(p1, true);
    r.grids = {1, 6};
    m.Generate(r, nullptr, nullptr);
  });
  ExpectError(ck, "too long", "exceeds", [&] {
    auto r = req({1, 2}, false);
    r.max_new_tokens = int64_t(1) << 21;
    m.Generate(r, nullptr, nullptr);
  });
  ExpectError(ck, "video pad", "video", [&] { m.Generate(req({1, 503}, false), nullptr, nullptr); });

  // ---- streaming, stop, cancel, memory ----
  std::vector<int32_t> seen;
  auto r = req(p1, true);
  r.max_new_tokens = 6;
  auto res = m.Generate(r, [&](int32_t t) { seen.push_back(t); }, nullptr);
  ck.Expect(seen == res.tokens && res.tokens.size() == 6 && res.stop_reason == "length", "streams every token");
  r.stop_tokens = {res.tokens[2]};
  auto st = m.Generate(r, nullptr, nullptr);
  ck.Expect(st.stop_reason == "stop" && st.tokens.size() <= 3 && st.tokens.back() == res.tokens[2], "stops at a stop token");
  std::atomic<bool> cancel{false};
  r.stop_tokens.clear();
  r.max_new_tokens = 1000;
  int count = 0;
  auto cr = m.Generate(r, [&](int32_t) { if (++count == 5) cancel = true; }, &cancel);
  ck.Expect(cr.stop_reason == "cancelled" && cr.tokens.size() == 5, "cancel between tokens");
  std::atomic<bool> pre{true};
  auto cp = m.Generate(r, nullptr, &pre);
  ck.Expect(cp.stop_reason == "cancelled" && cp.tokens.empty(), "cancel before prefill");
  const auto& acc = m.memory();
  ck.Expect(acc.Get(starkv::MemCategory::Activations).current == 0 && acc.Get(starkv::MemCategory::Activations).peak > 0,
            "activations freed after a call, peak kept");
  ck.Expect(acc.Get(starkv::MemCategory::Kv).current == 0 && acc.Get(starkv::MemCategory::Kv).peak > 0, "kv accounted");
  if (m.device().rfind("cuda", 0) == 0) {  // on a device the account holds the device copies of the tensors
    int64_t tensor_bytes = 0;
    for (const auto& e : Spec(mdir).tensors) tensor_bytes += static_cast<int64_t>(e.nbytes);
    ck.Expect(acc.Get(starkv::MemCategory::Weights).current >= tensor_bytes,
              "weights = device copies of every tensor (" + std::to_string(tensor_bytes) + " bytes)");
  } else {
    ck.Expect(acc.Get(starkv::MemCategory::Weights).current >= 883176, "weights = mapped bytes");
  }
  // Seeded sampling: reproducible, and differs across seeds.
  auto sr = req(p1, true);
  sr.max_new_tokens = 16;
  sr.sample.temperature = 1.5f;
  sr.sample.top_p = 0.95f;
  sr.sample.top_k = 50;
  sr.seed = 1;
  auto s1 = m.Generate(sr, nullptr, nullptr), s2 = m.Generate(sr, nullptr, nullptr);
  sr.seed = 2;
  auto s3 = m.Generate(sr, nullptr, nullptr);
  ck.Expect(s1.tokens == s2.tokens && s1.tokens != s3.tokens, "seeded sampling");
  // Two models side by side.
  Model m2(Spec(dir + "/qwen2_5vl-tiny"));
  auto g1 = m.Generate(req({10, 20, 30}, false), nullptr, nullptr);
  auto g2 = m2.Generate(req({10, 20, 30}, false), nullptr, nullptr);
  auto g3 = m.Generate(req({10, 20, 30}, false), nullptr, nullptr);
  ck.Expect(g1.tokens == g3.tokens && g1.prompt_logits_last == g3.prompt_logits_last && g1.tokens != g2.tokens,
            "two models side by side");
#ifdef STARKV_HAVE_CUDA
  FullDevice(ck, mdir, req(p1, true));
#else
  std::printf("full device: not run (built without CUDA)\n");
#endif
  return ck.Finish("errors_test");
}
