// The checkpoint's tensors as views into the mmapped shards. The table (names, dtypes, shapes, absolute
// offsets) comes from the TypeScript side; every entry is re-checked here against the mapped size.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/mapped_file.h"
#include "core/memory.h"
#include "core/tensor.h"

namespace starkv {

struct TensorEntry {
  std::string name;
  int file = 0;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t offset = 0;  // absolute byte offset in the file
  uint64_t nbytes = 0;
};

class WeightStore {
 public:
  // Maps every file and checks every entry (file index, byte count, bounds). Counts mapped bytes as
  // "weights" in `account` for the store's lifetime.
  // resident: the files read into anonymous huge pages instead of mapped (see MappedFile).
  WeightStore(const std::vector<std::string>& files, const std::vector<TensorEntry>& entries, MemoryAccount* account,
              bool resident = false);
  ~WeightStore();
  WeightStore(const WeightStore&) = delete;
  WeightStore& operator=(const WeightStore&) = delete;

  bool Has(const std::string& name) const { return index_.count(name) != 0; }
  // The tensor `name` with exactly `shape`; throws naming the tensor if it is missing or differs.
  Tensor Get(const std::string& name, const std::vector<int64_t>& shape) const;
  int64_t MappedBytes() const { return mapped_bytes_; }
  // Whether every file is resident (read into anonymous huge pages) rather than mapped.
  bool Resident() const;

 private:
  std::vector<std::unique_ptr<MappedFile>> files_;
  std::unordered_map<std::string, Tensor> index_;
  std::vector<Buffer> copies_;  // tensors whose offset was not aligned to their element size
  MemoryAccount* account_;
  int64_t mapped_bytes_ = 0;
};

}  // namespace starkv
