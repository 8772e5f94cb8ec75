// Model loading and the image / rope entry points (generation is in generate.cpp).
#include "models/qwen2vl_model.h"

#include <string>

#include "core/error.h"
#include "cpu/cpu_backend.h"

namespace starkv::qwen2vl {

Model::Model(const LoadSpec& spec) : c_(spec.config), prefill_chunk_(spec.prefill_chunk > 0 ? spec.prefill_chunk : 512) {
  Validate(c_);
  if (spec.threads < 0 || spec.threads > 1024) throw Error("threads must be in [0, 1024]");
  weights_ = std::make_unique<WeightStore>(spec.files, spec.tensors, &account_);
  text_w_ = BindText(*weights_, c_);
  vision_w_ = BindVision(*weights_, c_);
  cpu::CpuOptions opt;
  opt.threads = spec.threads;
  opt.use_dnnl = spec.use_dnnl;
  backend_ = std::make_unique<cpu::CpuBackend>(&account_, opt);
  decoder_ = std::make_unique<TextDecoder>(c_, text_w_, *backend_);
  vision_ = std::make_unique<VisionTower>(c_, vision_w_, *backend_);
}

Model::~Model() = default;

std::vector<float> Model::EncodeImages(const float* pixels, int64_t n_floats, const int32_t* grids,
                                       int64_t n_grid_values, const std::atomic<bool>* cancel, Trace* trace) {
  const std::vector<ImageGrid> g = ParseGrids(grids, n_grid_values, c_.vision);
  const int64_t pd = c_.vision.patch_dim();
  if (n_floats % pd != 0)
    throw Error("pixels hold " + std::to_string(n_floats) + " values, not a whole number of " + std::to_string(pd) +
                "-value patches");
  Buffer y = vision_->Encode(pixels, n_floats / pd, g, trace, cancel);
  std::vector<float> out(static_cast<size_t>(MergedTokens(g, c_.vision) * c_.hidden));
  backend_->Download(y.f(), sizeof(float) * out.size(), out.data());
  return out;
}

Buffer Model::EncodeToBackend(const float* pixels, int64_t n_floats, const std::vector<ImageGrid>& grids,
                              const std::atomic<bool>* cancel, Trace* trace) {
  const int64_t pd = c_.vision.patch_dim();
  if (n_floats % pd != 0)
    throw Error("pixels hold " + std::to_string(n_floats) + " values, not a whole number of " + std::to_string(pd) +
                "-value patches");
  return vision_->Encode(pixels, n_floats / pd, grids, trace, cancel);
}

RopeIndex Model::Rope(const int32_t* ids, int64_t L, const int32_t* grids, int64_t n_grid_values) const {
  const std::vector<ImageGrid> g = ParseGrids(grids, n_grid_values, c_.vision);
  return ComputeRopeIndex(c_, ids, L, g);
}

}  // namespace starkv::qwen2vl
