// A loaded Qwen2-VL / Qwen2.5-VL model: memory account, mmapped weights, a backend (CPU with its thread
// pool, or CUDA when built with it and asked or available), vision tower and text decoder. Not thread-safe: one engine thread drives it (the binding
// queues calls). Several models can live side by side (no global state).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/memory.h"
#include "core/weight_store.h"
#include "models/decoder.h"
#include "models/episode.h"
#include "models/qwen2vl_config.h"
#include "models/qwen2vl_weights.h"
#include "models/rope_index.h"
#include "models/trace.h"
#include "models/vision.h"

namespace starkv::qwen2vl {

struct LoadSpec {
  Config config;
  std::vector<std::string> files;
  std::vector<TensorEntry> tensors;
  int threads = 0;             // 0: hardware_concurrency
  int64_t prefill_chunk = 512; // prompt tokens per prefill pass (bounds activation memory)
  bool use_dnnl = true;
  std::string cpu_matmul = "fp32";  // CPU prefill with BF16 weights: "fp32" | "bf16" | "auto" (cpu/gemm.h)
  std::string device = "auto";  // "auto" | "cpu" | "cuda" | "cuda:N" (see ParseDevice)
  // CPU weights: "mapped" (the files' page cache), "resident" (read into anonymous huge pages: faster
  // decode for large models, not shared or evictable) or "auto" (resident on the CPU when the files are
  // 2 GiB or more and twice them fit in what the machine has available with 4 GiB to spare; see
  // MappedFile).
  std::string weights = "auto";
};

// A device string: "auto" (CUDA device 0 when this build has CUDA and one is usable, else the CPU),
// "cpu", "cuda" (= "cuda:0") or "cuda:N". Throws starkv::Error naming a malformed one.
struct DeviceChoice {
  enum Kind { Auto, Cpu, Cuda } kind = Auto;
  int index = 0;
};
DeviceChoice ParseDevice(const std::string& s);

struct GenerateRequest {
  std::vector<int32_t> ids;
  std::vector<float> pixels;  // [rows, patch_dim]
  std::vector<int32_t> grids; // n*3
  int64_t max_new_tokens = 0;
  SampleParams sample;
  uint64_t seed = 0;
  std::vector<int32_t> stop_tokens;
  bool trace = false;
  KvPolicy kv;  // compression of the prompt's cache before decoding (method nullptr: none)
};

struct GenerateResult {
  std::vector<int32_t> tokens;
  std::vector<float> prompt_logits_last;  // empty when cancelled before the prefill ended
  std::string stop_reason;                // "stop" | "length" | "cancelled"
  double vision_ms = 0, prefill_ms = 0, decode_ms = 0;
  int64_t prompt_tokens = 0;
  std::unique_ptr<Trace> trace;
  // Episode turns: compression time and, per layer, what it kept (filled when a policy ran).
  double compress_ms = 0;
  std::vector<LayerReport> layers;
  int64_t kv_bytes = 0;  // keys + values held after the turn
};

class Model {
 public:
  explicit Model(const LoadSpec& spec);
  ~Model();

  const Config& config() const { return c_; }
  Backend& backend() { return *backend_; }
  // "mapped" or "resident" (how the CPU reads the checkpoint; a device model's host copy is mapped).
  std::string WeightsMode() const { return weights_->Resident() ? "resident" : "mapped"; }
  const MemoryAccount& memory() const { return account_; }
  // "cpu" or "cuda:0 NVIDIA H100 80GB HBM3 (sm_90)"; and why "auto" chose the CPU ("" otherwise).
  const std::string& device() const { return device_; }
  const std::string& device_note() const { return device_note_; }

  // pixels: rows x patch_dim; grids: n*3. Returns [merged tokens, hidden] in LLM order.
  std::vector<float> EncodeImages(const float* pixels, int64_t n_floats, const int32_t* grids, int64_t n_grid_values,
                                  const std::atomic<bool>* cancel, Trace* trace = nullptr);
  RopeIndex Rope(const int32_t* ids, int64_t L, const int32_t* grids, int64_t n_grid_values) const;
  // Runs prompt + generation; on_token is called on this thread for every token as it is produced.
  GenerateResult Generate(const GenerateRequest& req, const std::function<void(int32_t)>& on_token,
                          const std::atomic<bool>* cancel);
  // One turn of a persistent episode: prefills only req.ids against the episode's (compressed) cache,
  // M-RoPE positions continuing from its logical length; compresses every layer with req.kv; decodes.
  GenerateResult RunTurn(Episode& ep, const GenerateRequest& req, const std::function<void(int32_t)>& on_token,
                         const std::atomic<bool>* cancel);
  std::unique_ptr<Episode> NewEpisode() { return std::make_unique<Episode>(backend_.get(), c_); }

 private:
  // Merged image tokens [n, hidden] in backend memory (LLM order).
  Buffer EncodeToBackend(const float* pixels, int64_t n_floats, const std::vector<ImageGrid>& grids,
                         const std::atomic<bool>* cancel, Trace* trace);

  // Creates backend_ for spec.device (before the weights: a CUDA model counts device copies as weights).
  void MakeBackend(const LoadSpec& spec);
  void MakeCpuBackend(const LoadSpec& spec);
  // weights_ over the checkpoint for backend_, and the layers' views of it.
  void BindWeights(const LoadSpec& spec);

  Config c_;
  int64_t prefill_chunk_;
  std::string device_ = "cpu", device_note_;
  MemoryAccount account_;
  std::unique_ptr<WeightStore> weights_;
  std::unique_ptr<Backend> backend_;
  TextWeights text_w_;
  VisionWeights vision_w_;
  std::unique_ptr<TextDecoder> decoder_;
  std::unique_ptr<VisionTower> vision_;
};

}  // namespace starkv::qwen2vl
