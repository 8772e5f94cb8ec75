// Parsing of loadModel's spec (see model_spec_js.h).
#include "binding/model_spec_js.h"

#include <initializer_list>
#include <string>
#include <utility>

#include "binding/js_args.h"
#include "core/dtype.h"
#include "core/error.h"

namespace starkv::binding {
namespace {

// spec[key], a string that must be one of `choices`; `fallback` where it is absent.
std::string Choice(const Napi::Object& spec, const char* key, std::initializer_list<const char*> choices,
                   const std::string& fallback) {
  if (!Present(spec, key)) return fallback;
  std::string list;
  size_t i = 0;
  for (const char* c : choices) list += (i++ == 0 ? "" : i == choices.size() ? " or " : ", ") + std::string(c);
  if (!spec.Get(key).IsString()) Fail(spec.Env(), std::string("spec.") + key + " must be a string (" + list + ")");
  const std::string v = spec.Get(key).As<Napi::String>().Utf8Value();
  for (const char* c : choices)
    if (v == c) return v;
  Fail(spec.Env(), std::string("spec.") + key + " '" + v + "' is not " + list);
}

}  // namespace

qwen2vl::LoadSpec ParseSpec(const Napi::Object& spec) {
  qwen2vl::LoadSpec s;
  const Napi::Object c = Obj(spec, "config", "spec");
  const std::string W = "spec.config";
  const int64_t kMax = 1 << 30;
  const std::string arch = Str(c, "arch", W);
  if (arch == "qwen2_vl") s.config.arch = qwen2vl::Arch::Qwen2VL;
  else if (arch == "qwen2_5_vl") s.config.arch = qwen2vl::Arch::Qwen25VL;
  else Fail(spec.Env(), W + ".arch '" + arch + "' is not qwen2_vl or qwen2_5_vl");
  auto& k = s.config;
  k.hidden = static_cast<int>(Int(c, "hiddenSize", W, true, 0, 1, kMax));
  k.layers = static_cast<int>(Int(c, "numLayers", W, true, 0, 1, 4096));
  k.heads = static_cast<int>(Int(c, "numHeads", W, true, 0, 1, 4096));
  k.kv_heads = static_cast<int>(Int(c, "numKvHeads", W, true, 0, 1, 4096));
  k.head_dim = static_cast<int>(Int(c, "headDim", W, true, 0, 2, 65536));
  k.intermediate = static_cast<int>(Int(c, "intermediateSize", W, true, 0, 1, kMax));
  k.vocab = static_cast<int>(Int(c, "vocabSize", W, true, 0, 1, kMax));
  k.rms_eps = static_cast<float>(Num(c, "rmsNormEps", W, true, 0));
  k.rope_theta = Num(c, "ropeTheta", W, true, 0);
  const Napi::Array ms = Arr(c, "mropeSection", W);
  if (ms.Length() != 3) Fail(spec.Env(), W + ".mropeSection must have 3 numbers");
  for (uint32_t i = 0; i < 3; ++i) k.mrope[i] = static_cast<int>(ArrInt(ms, i, W + ".mropeSection", 0, 65536));
  if (!Present(c, "tieWordEmbeddings") || !c.Get("tieWordEmbeddings").IsBoolean())
    Fail(spec.Env(), W + ".tieWordEmbeddings must be a boolean");
  k.tie_embeddings = c.Get("tieWordEmbeddings").As<Napi::Boolean>().Value();
  k.image_token = static_cast<int>(Int(c, "imageTokenId", W, true, 0, 0, kMax));
  k.video_token = static_cast<int>(Int(c, "videoTokenId", W, true, 0, 0, kMax));
  k.vision_start_token = static_cast<int>(Int(c, "visionStartTokenId", W, true, 0, 0, kMax));
  k.vision_end_token = static_cast<int>(Int(c, "visionEndTokenId", W, true, 0, 0, kMax));
  k.max_positions = Int(c, "maxPositionEmbeddings", W, false, 0, 0, int64_t(1) << 40);
  const Napi::Object v = Obj(c, "vision", W);
  const std::string V = W + ".vision";
  auto& x = k.vision;
  x.depth = static_cast<int>(Int(v, "depth", V, true, 0, 1, 4096));
  x.width = static_cast<int>(Int(v, "width", V, true, 0, 1, kMax));
  x.num_heads = static_cast<int>(Int(v, "numHeads", V, true, 0, 1, 4096));
  x.mlp_width = static_cast<int>(Int(v, "mlpWidth", V, true, 0, 1, kMax));
  x.out_hidden = static_cast<int>(Int(v, "outHidden", V, true, 0, 1, kMax));
  x.patch_size = static_cast<int>(Int(v, "patchSize", V, true, 0, 1, 1024));
  x.temporal_patch_size = static_cast<int>(Int(v, "temporalPatchSize", V, true, 0, 1, 64));
  x.spatial_merge_size = static_cast<int>(Int(v, "spatialMergeSize", V, true, 0, 1, 64));
  x.in_channels = static_cast<int>(Int(v, "inChannels", V, true, 0, 1, 64));
  x.window_size = static_cast<int>(Int(v, "windowSize", V, false, 0, 0, 1 << 20));
  if (Present(v, "fullattBlockIndexes")) {
    const Napi::Array fb = Arr(v, "fullattBlockIndexes", V);
    for (uint32_t i = 0; i < fb.Length(); ++i)
      x.fullatt_block_indexes.push_back(static_cast<int>(ArrInt(fb, i, V + ".fullattBlockIndexes", 0, 4095)));
  }
  const std::string act = Str(v, "act", V), norm = Str(v, "norm", V);
  if (act == "quick_gelu") x.act = Act::QuickGelu;
  else if (act == "silu") x.act = Act::Silu;
  else if (act == "gelu") x.act = Act::GeluErf;
  else Fail(spec.Env(), V + ".act '" + act + "' is not quick_gelu, silu or gelu");
  if (norm != "layernorm" && norm != "rmsnorm") Fail(spec.Env(), V + ".norm '" + norm + "' is not layernorm or rmsnorm");
  x.layernorm = norm == "layernorm";
  x.eps = static_cast<float>(Num(v, "eps", V, false, 1e-6));
  const Napi::Array files = Arr(spec, "files", "spec");
  for (uint32_t i = 0; i < files.Length(); ++i) {
    if (!files.Get(i).IsString()) Fail(spec.Env(), "spec.files[" + std::to_string(i) + "] must be a string");
    s.files.push_back(files.Get(i).As<Napi::String>().Utf8Value());
  }
  const Napi::Array ts = Arr(spec, "tensors", "spec");
  for (uint32_t i = 0; i < ts.Length(); ++i) {
    const std::string T = "spec.tensors[" + std::to_string(i) + "]";
    if (!ts.Get(i).IsObject()) Fail(spec.Env(), T + " must be an object");
    const Napi::Object t = ts.Get(i).As<Napi::Object>();
    TensorEntry e;
    e.name = Str(t, "name", T);
    e.file = static_cast<int>(Int(t, "file", T, true, 0, 0, 1 << 20));
    try {
      e.dtype = ParseDType(Str(t, "dtype", T), T + " ('" + e.name + "')");
    } catch (const Error& err) {
      Fail(spec.Env(), err.what());
    }
    const Napi::Array sh = Arr(t, "shape", T);
    for (uint32_t j = 0; j < sh.Length(); ++j) e.shape.push_back(ArrInt(sh, j, T + ".shape", 0, int64_t(1) << 40));
    e.offset = static_cast<uint64_t>(Int(t, "offset", T, true, 0, 0, int64_t(1) << 52));
    e.nbytes = static_cast<uint64_t>(Int(t, "nbytes", T, true, 0, 0, int64_t(1) << 52));
    s.tensors.push_back(std::move(e));
  }
  s.threads = static_cast<int>(Int(spec, "threads", "spec", false, 0, 0, 1024));
  s.cpu_matmul = Choice(spec, "cpuMatmul", {"auto", "fp32", "bf16"}, s.cpu_matmul);
  s.weights = Choice(spec, "weights", {"auto", "mapped", "resident"}, s.weights);
  if (Present(spec, "device")) {
    if (!spec.Get("device").IsString()) Fail(spec.Env(), "spec.device must be a string (auto, cpu, cuda or cuda:N)");
    s.device = spec.Get("device").As<Napi::String>().Utf8Value();
    try {
      qwen2vl::ParseDevice(s.device);
    } catch (const Error& err) {
      Fail(spec.Env(), std::string("spec.") + err.what());
    }
  }
  return s;
}

}  // namespace starkv::binding
