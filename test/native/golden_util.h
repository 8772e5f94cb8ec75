// Test-only helpers for the C++ tests: a minimal JSON reader for safetensors headers, a safetensors
// file reader, checkpoint loading with the name normalisation the TypeScript side does, the tiny
// golden configs, and comparison/report utilities. (The engine itself never parses JSON.)
#pragma once

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <iterator>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/weight_store.h"
#include "models/qwen2vl_model.h"

namespace gt {

// ---- JSON (objects, arrays, strings, numbers, literals) ----
struct Json {
  enum Kind { Null, Bool, Num, Str, Arr, Obj } kind = Null;
  double num = 0;
  bool b = false;
  std::string str;
  std::vector<Json> arr;
  std::vector<std::pair<std::string, Json>> obj;
  const Json* Find(const std::string& k) const {
    for (const auto& kv : obj)
      if (kv.first == k) return &kv.second;
    return nullptr;
  }
};

class JsonParser {
 public:
  explicit JsonParser(const std::string& s) : s_(s) {}
  Json Parse() {
    Json j = Value();
    Ws();
    if (i_ != s_.size()) throw std::runtime_error("json: trailing data");
    return j;
  }

 private:
  void Ws() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  char Peek() {
    Ws();
    if (i_ >= s_.size()) throw std::runtime_error("json: unexpected end");
    return s_[i_];
  }
  void Expect(char c) {
    if (Peek() != c) throw std::runtime_error(std::string("json: expected ") + c);
    ++i_;
  }
  std::string String() {
    Expect('"');
    std::string out;
    while (i_ < s_.size() && s_[i_] != '"') {
      char c = s_[i_++];
      if (c == '\\') {
        char e = s_[i_++];
        if (e == 'u') {
          out += '?';
          i_ += 4;
        } else out += e == 'n' ? '\n' : e == 't' ? '\t' : e;
      } else out += c;
    }
    ++i_;
    return out;
  }
  Json Value() {
    Json j;
    const char c = Peek();
    if (c == '{') {
      j.kind = Json::Obj;
      ++i_;
      if (Peek() == '}') { ++i_; return j; }
      for (;;) {
        std::string k = String();
        Expect(':');
        j.obj.emplace_back(k, Value());
        if (Peek() == ',') { ++i_; continue; }
        Expect('}');
        return j;
      }
    }
    if (c == '[') {
      j.kind = Json::Arr;
      ++i_;
      if (Peek() == ']') { ++i_; return j; }
      for (;;) {
        j.arr.push_back(Value());
        if (Peek() == ',') { ++i_; continue; }
        Expect(']');
        return j;
      }
    }
    if (c == '"') {
      j.kind = Json::Str;
      j.str = String();
      return j;
    }
    if (s_.compare(i_, 4, "true") == 0) { i_ += 4; j.kind = Json::Bool; j.b = true; return j; }
    if (s_.compare(i_, 5, "false") == 0) { i_ += 5; j.kind = Json::Bool; return j; }
    if (s_.compare(i_, 4, "null") == 0) { i_ += 4; return j; }
    size_t end = i_;
    while (end < s_.size() && std::strchr("+-0123456789.eE", s_[end])) ++end;
    if (end == i_) throw std::runtime_error("json: bad value");
    j.kind = Json::Num;
    j.num = std::strtod(s_.substr(i_, end - i_).c_str(), nullptr);
    i_ = end;
    return j;
  }
  const std::string& s_;
  size_t i_ = 0;
};

// ---- safetensors ----
struct StEntry {
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // absolute
};

inline std::map<std::string, StEntry> ReadHeader(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  uint64_t n = 0;
  f.read(reinterpret_cast<char*>(&n), 8);
  std::string h(n, '\0');
  f.read(&h[0], static_cast<std::streamsize>(n));
  const Json j = JsonParser(h).Parse();
  std::map<std::string, StEntry> out;
  for (const auto& kv : j.obj) {
    if (kv.first == "__metadata__") continue;
    StEntry e;
    e.dtype = kv.second.Find("dtype")->str;
    for (const auto& d : kv.second.Find("shape")->arr) e.shape.push_back(static_cast<int64_t>(d.num));
    const auto& off = kv.second.Find("data_offsets")->arr;
    e.begin = 8 + n + static_cast<uint64_t>(off[0].num);
    e.end = 8 + n + static_cast<uint64_t>(off[1].num);
    out[kv.first] = e;
  }
  return out;
}

struct Loaded {
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<float> f;    // F32 / BF16 / F16 as float
  std::vector<int64_t> i;  // I64
  int64_t Numel() const {
    int64_t n = 1;
    for (auto s : shape) n *= s;
    return n;
  }
};

class StFile {
 public:
  explicit StFile(const std::string& path) : path_(path), hdr_(ReadHeader(path)) {
    std::ifstream f(path, std::ios::binary);
    bytes_.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  bool Has(const std::string& k) const { return hdr_.count(k) != 0; }
  const std::map<std::string, StEntry>& entries() const { return hdr_; }
  Loaded Get(const std::string& k) const {
    auto it = hdr_.find(k);
    if (it == hdr_.end()) throw std::runtime_error(path_ + " lacks " + k);
    const StEntry& e = it->second;
    Loaded t;
    t.dtype = e.dtype;
    t.shape = e.shape;
    const char* p = bytes_.data() + e.begin;
    const int64_t n = t.Numel();
    if (e.dtype == "I64") {
      t.i.resize(n);
      std::memcpy(t.i.data(), p, 8 * n);
    } else if (e.dtype == "F32") {
      t.f.resize(n);
      std::memcpy(t.f.data(), p, 4 * n);
    } else if (e.dtype == "BF16" || e.dtype == "F16") {
      t.f.resize(n);
      for (int64_t j = 0; j < n; ++j) {
        uint16_t h;
        std::memcpy(&h, p + 2 * j, 2);
        t.f[j] = e.dtype == "BF16" ? starkv::Bf16ToF32(h) : starkv::F16ToF32(h);
      }
    } else {
      throw std::runtime_error("unsupported dtype " + e.dtype);
    }
    return t;
  }

 private:
  std::string path_;
  std::map<std::string, StEntry> hdr_;
  std::vector<char> bytes_;
};

// ---- golden location ----
// A comma-separated list from the environment, or `all` when it is unset (the emulated runs of
// kernels/emu/run.sh take a subset: one emulated model turn takes minutes).
inline std::vector<std::string> PickFromEnv(const char* var, std::vector<std::string> all) {
  const char* v = std::getenv(var);
  if (!v || !*v) return all;
  std::vector<std::string> out;
  for (std::string s = v; !s.empty();) {
    const size_t c = s.find(',');
    out.push_back(s.substr(0, c));
    s = c == std::string::npos ? "" : s.substr(c + 1);
  }
  return out;
}

inline bool IsDir(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// STARKV_GOLDEN_DIR, else test/golden-data/hf-qwen2vl (run from the repo root or build/), else
// /work/shared/golden/hf-qwen2vl. Exits non-zero (never skips) when none exists.
inline std::string GoldenDir() {
  std::vector<std::string> c;
  if (const char* e = std::getenv("STARKV_GOLDEN_DIR")) c.push_back(e);
  c.push_back("test/golden-data/hf-qwen2vl");
  c.push_back("../test/golden-data/hf-qwen2vl");
  c.push_back("/work/shared/golden/hf-qwen2vl");
  for (const auto& p : c)
    if (IsDir(p) && IsDir(p + "/qwen2vl-tiny")) return p;
  std::fprintf(stderr, "FAIL: golden data not found (set STARKV_GOLDEN_DIR or provide test/golden-data/hf-qwen2vl)\n");
  std::exit(2);
}

// ---- checkpoints ----
inline std::string NormaliseName(const std::string& n) {
  if (n.rfind("visual.", 0) == 0) return "model." + n;
  if (n.rfind("model.", 0) == 0 && n.rfind("model.language_model.", 0) != 0 && n.rfind("model.visual.", 0) != 0)
    return "model.language_model." + n.substr(6);
  return n;
}

inline std::vector<starkv::TensorEntry> TensorTable(const std::string& file, int index) {
  std::vector<starkv::TensorEntry> out;
  for (const auto& kv : ReadHeader(file)) {
    starkv::TensorEntry t;
    t.name = NormaliseName(kv.first);
    t.file = index;
    t.dtype = starkv::ParseDType(kv.second.dtype, kv.first);
    t.shape = kv.second.shape;
    t.offset = kv.second.begin;
    t.nbytes = kv.second.end - kv.second.begin;
    out.push_back(t);
  }
  return out;
}

// The golden tiny configs (as the TypeScript side resolves them from config.json).
inline starkv::qwen2vl::Config TinyConfig(bool qv25, bool tied) {
  using namespace starkv::qwen2vl;
  Config c;
  c.arch = qv25 ? Arch::Qwen25VL : Arch::Qwen2VL;
  c.hidden = 64;
  c.layers = 2;
  c.heads = 4;
  c.kv_heads = 2;
  c.head_dim = 16;
  c.intermediate = 128;
  c.vocab = 512;
  c.rms_eps = 1e-6f;
  c.rope_theta = 1e6;
  c.mrope[0] = 2;
  c.mrope[1] = 3;
  c.mrope[2] = 3;
  c.tie_embeddings = tied;
  c.image_token = 500;
  c.video_token = 503;
  c.vision_start_token = 501;
  c.vision_end_token = 502;
  VisionConfig& v = c.vision;
  v.depth = qv25 ? 4 : 2;
  v.width = 32;
  v.num_heads = 2;
  v.mlp_width = 64;
  v.out_hidden = 64;
  v.window_size = qv25 ? 56 : 0;
  if (qv25) v.fullatt_block_indexes = {1, 3};
  else v.fullatt_block_indexes = {0, 1};
  v.act = qv25 ? starkv::Act::Silu : starkv::Act::QuickGelu;
  v.layernorm = !qv25;
  v.eps = 1e-6f;
  return c;
}

inline std::unique_ptr<starkv::qwen2vl::Model> LoadTiny(const std::string& dir, int threads = 2, bool use_dnnl = true) {
  const bool qv25 = dir.find("qwen2_5vl") != std::string::npos;
  const bool tied = dir.find("tied") != std::string::npos;
  starkv::qwen2vl::LoadSpec s;
  s.config = TinyConfig(qv25, tied);
  s.files = {dir + "/model.safetensors"};
  s.tensors = TensorTable(s.files[0], 0);
  s.threads = threads;
  s.use_dnnl = use_dnnl;
  // STARKV_CPU_MATMUL=fp32|bf16 runs the tests with that CPU prefill arithmetic (default: auto).
  if (const char* m = std::getenv("STARKV_CPU_MATMUL"); m && *m) s.cpu_matmul = m;
  // STARKV_WEIGHTS=mapped|resident: how the CPU reads the checkpoint (the tiny models are mapped on auto).
  if (const char* w = std::getenv("STARKV_WEIGHTS"); w && *w) s.weights = w;
  return std::make_unique<starkv::qwen2vl::Model>(s);
}

// ---- comparison ----
// max |a - b| / max(1, max |b|)
inline double RelErr(const float* a, const float* b, int64_t n) {
  double d = 0, s = 0;
  for (int64_t i = 0; i < n; ++i) {
    d = std::max(d, std::fabs(static_cast<double>(a[i]) - b[i]));
    if (std::isnan(a[i]) || std::isnan(b[i])) d = INFINITY;
    s = std::max(s, std::fabs(static_cast<double>(b[i])));
  }
  return d / std::max(1.0, s);
}

struct Checker {
  int failures = 0;
  int checks = 0;
  void Expect(bool ok, const std::string& what) {
    ++checks;
    if (!ok) {
      ++failures;
      std::printf("  FAIL %s\n", what.c_str());
    }
  }
  void Near(const std::string& what, const float* a, const float* b, int64_t n, double tol) {
    const double e = RelErr(a, b, n);
    ++checks;
    const bool ok = e <= tol;
    if (!ok) ++failures;
    std::printf("  %s %-34s max err %.2e (tol %.0e)\n", ok ? "ok  " : "FAIL", what.c_str(), e, tol);
  }
  int Finish(const char* name) {
    std::printf("%s: %d checks, %d failures\n", name, checks, failures);
    return failures == 0 ? 0 : 1;
  }
};

}  // namespace gt
