// Model loading and the image / rope entry points (generation is in generate.cpp).
#include "models/qwen2vl_model.h"

#include <sys/stat.h>

#include <cctype>
#include <string>

#include "core/error.h"
#include "cpu/cpu_backend.h"
#ifdef STARKV_HAVE_CUDA
#include "cuda_backend.h"  // kernels/
#endif

namespace starkv::qwen2vl {

DeviceChoice ParseDevice(const std::string& s) {
  DeviceChoice d;
  if (s.empty() || s == "auto") return d;
  if (s == "cpu") {
    d.kind = DeviceChoice::Cpu;
    return d;
  }
  if (s == "cuda") {
    d.kind = DeviceChoice::Cuda;
    return d;
  }
  if (s.rfind("cuda:", 0) == 0 && s.size() > 5 && s.size() <= 8) {
    bool digits = true;
    for (size_t i = 5; i < s.size(); ++i) digits = digits && std::isdigit(static_cast<unsigned char>(s[i]));
    if (digits) {
      d.kind = DeviceChoice::Cuda;
      d.index = std::stoi(s.substr(5));
      return d;
    }
  }
  throw Error("device '" + s + "' is not auto, cpu, cuda or cuda:N");
}

// Whether the CPU reads the checkpoint from anonymous huge pages (LoadSpec::weights).
static bool ResidentWeights(const LoadSpec& spec) {
  if (spec.weights != "auto" && spec.weights != "mapped" && spec.weights != "resident")
    throw Error("weights '" + spec.weights + "' is not auto, mapped or resident");
  if (spec.weights != "auto") return spec.weights == "resident";
  int64_t total = 0;
  for (const std::string& f : spec.files) {
    struct stat st {};
    if (::stat(f.c_str(), &st) == 0) total += static_cast<int64_t>(st.st_size);
  }
  // Twice the files: the copy and the page cache it is read from (with less, reading the copy evicts the
  // cache and every load reads the disk: 16.6 GB took 33-40 s here against 5-9 s mapped from the cache).
  const int64_t avail = AvailableMemoryBytes(), spare = int64_t(4) << 30;
  return total >= (int64_t(2) << 30) && avail >= 0 && 2 * total <= avail - spare;
}

void Model::MakeBackend(const LoadSpec& spec) {
  const DeviceChoice d = ParseDevice(spec.device);
#ifdef STARKV_HAVE_CUDA
  if (d.kind != DeviceChoice::Cpu) {
    std::string reason;
    if (cuda::CountDevices(&reason) > 0) {
      try {
        auto be = std::make_unique<cuda::CudaBackend>(&account_, d.index, spec.threads);
        device_ = be->Describe();
        backend_ = std::move(be);
        return;
      } catch (const Error& e) {
        if (d.kind == DeviceChoice::Cuda) throw;
        device_note_ = e.what();  // auto: an unusable device (e.g. older than sm_80) means the CPU
      }
    } else {
      if (d.kind == DeviceChoice::Cuda) throw Error(reason);
      device_note_ = reason;
    }
  }
#else
  if (d.kind == DeviceChoice::Cuda)
    throw Error("built without CUDA: device '" + spec.device + "' is not available (rebuild with nvcc present)");
  if (d.kind == DeviceChoice::Auto) device_note_ = "built without CUDA";
#endif
  MakeCpuBackend(spec);
}

void Model::MakeCpuBackend(const LoadSpec& spec) {
  cpu::CpuOptions opt;
  opt.threads = spec.threads;
  opt.use_dnnl = spec.use_dnnl;
  opt.matmul = spec.cpu_matmul;
  backend_ = std::make_unique<cpu::CpuBackend>(&account_, opt);
  device_ = "cpu";
}

Model::Model(const LoadSpec& spec) : c_(spec.config), prefill_chunk_(spec.prefill_chunk > 0 ? spec.prefill_chunk : 512) {
  Validate(c_);
  if (spec.threads < 0 || spec.threads > 1024) throw Error("threads must be in [0, 1024]");
  MakeBackend(spec);
  BindWeights(spec);
#ifdef STARKV_HAVE_CUDA
  if (auto* cb = dynamic_cast<cuda::CudaBackend*>(backend_.get())) {
    try {
      for (const TensorEntry& e : spec.tensors) cb->PreloadWeight(weights_->Get(e.name, e.shape), e.name);
      cb->Synchronize();
    } catch (const OutOfDeviceMemory& e) {
      if (ParseDevice(spec.device).kind != DeviceChoice::Auto) throw;
      // "auto" is the GPU when the model fits there: otherwise the CPU, and the note says why. The GPU's
      // copies go with its backend.
      device_note_ = device_ + ": the weights (" + GiB(double(weights_->MappedBytes())) + ") do not fit (" + e.what() + ")";
      backend_.reset();
      MakeCpuBackend(spec);
      BindWeights(spec);
    }
  }
#endif
  decoder_ = std::make_unique<TextDecoder>(c_, text_w_, *backend_);
  vision_ = std::make_unique<VisionTower>(c_, vision_w_, *backend_);
}

void Model::BindWeights(const LoadSpec& spec) {
  // On a device, the host mapping is only the source of the device copies, which are what the account
  // counts as weights; on the CPU the mapping is the weights.
  const bool host = backend_->HostAccessible();
  weights_.reset();  // before the new store: a resident copy must not exist twice
  weights_ = std::make_unique<WeightStore>(spec.files, spec.tensors, host ? &account_ : nullptr,
                                           host && ResidentWeights(spec));
  text_w_ = BindText(*weights_, c_);
  vision_w_ = BindVision(*weights_, c_);
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
