// Maps shards and validates the tensor table.
#include "core/weight_store.h"

#include <cstring>

#include "core/error.h"

namespace starkv {

WeightStore::WeightStore(const std::vector<std::string>& files, const std::vector<TensorEntry>& entries,
                         MemoryAccount* account, bool resident)
    : account_(account) {
  if (files.empty()) throw Error("no checkpoint files were given");
  for (const auto& f : files) {
    files_.push_back(std::make_unique<MappedFile>(f, resident));
    mapped_bytes_ += static_cast<int64_t>(files_.back()->size());
  }
  if (account_) account_->Add(MemCategory::Weights, mapped_bytes_);
  try {
    for (const auto& e : entries) {
      const std::string where = "tensor '" + e.name + "'";
      if (e.file < 0 || e.file >= static_cast<int>(files_.size()))
        throw Error(where + ": file index " + std::to_string(e.file) + " is not one of the " +
                    std::to_string(files_.size()) + " files");
      const MappedFile& mf = *files_[e.file];
      if (e.shape.size() > static_cast<size_t>(Tensor::kMaxDims))
        throw Error(where + " in " + mf.path() + ": " + std::to_string(e.shape.size()) + " dimensions (at most " +
                    std::to_string(Tensor::kMaxDims) + ")");
      Tensor t;
      t.dtype = e.dtype;
      t.ndim = static_cast<int>(e.shape.size());
      uint64_t numel = 1;
      for (int i = 0; i < t.ndim; ++i) {
        if (e.shape[i] < 0 || e.shape[i] > (int64_t(1) << 40))
          throw Error(where + " in " + mf.path() + ": bad shape " + ShapeString(e.shape));
        t.shape[i] = e.shape[i];
        numel *= static_cast<uint64_t>(e.shape[i]);
      }
      if (numel * DTypeSize(e.dtype) != e.nbytes)
        throw Error(where + " in " + mf.path() + ": " + std::to_string(e.nbytes) + " bytes do not hold " +
                    DTypeName(e.dtype) + " " + ShapeString(e.shape));
      if (e.offset > mf.size() || e.nbytes > mf.size() - e.offset)
        throw Error(where + " in " + mf.path() + ": bytes [" + std::to_string(e.offset) + ", " +
                    std::to_string(e.offset + e.nbytes) + ") lie outside the file of " + std::to_string(mf.size()) +
                    " bytes (truncated checkpoint?)");
      const unsigned char* p = mf.data() + e.offset;
      if (e.nbytes > 0 && (e.offset % DTypeSize(e.dtype)) != 0) {  // unaligned: keep an aligned copy
        copies_.emplace_back(account_, MemCategory::Weights, e.nbytes);
        std::memcpy(copies_.back().data(), p, e.nbytes);
        p = static_cast<const unsigned char*>(copies_.back().data());
      }
      t.data = e.nbytes > 0 ? p : mf.data();
      if (!index_.emplace(e.name, t).second) throw Error(where + " appears twice in the tensor table");
    }
  } catch (...) {
    if (account_) account_->Sub(MemCategory::Weights, mapped_bytes_);
    throw;
  }
}

bool WeightStore::Resident() const {
  for (const auto& f : files_)
    if (!f->resident() && f->size() > 0) return false;
  return !files_.empty();
}

WeightStore::~WeightStore() {
  if (account_) account_->Sub(MemCategory::Weights, mapped_bytes_);
}

Tensor WeightStore::Get(const std::string& name, const std::vector<int64_t>& shape) const {
  auto it = index_.find(name);
  if (it == index_.end()) throw Error("the checkpoint lacks tensor '" + name + "' (expected shape " + ShapeString(shape) + ")");
  const Tensor& t = it->second;
  bool same = t.ndim == static_cast<int>(shape.size());
  for (int i = 0; same && i < t.ndim; ++i) same = t.shape[i] == shape[i];
  if (!same)
    throw Error("tensor '" + name + "' has shape " + ShapeString(t) + ", expected " + ShapeString(shape));
  return t;
}

}  // namespace starkv
