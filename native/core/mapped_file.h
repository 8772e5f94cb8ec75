// A read-only, private memory map of a whole file (the safetensors shards). RAII; throws
// starkv::Error naming the file when it cannot be opened or mapped.
#pragma once

#include <cstddef>
#include <string>

namespace starkv {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  const unsigned char* data() const { return static_cast<const unsigned char*>(ptr_); }
  size_t size() const { return size_; }

 private:
  std::string path_;
  void* ptr_ = nullptr;
  size_t size_ = 0;
};

}  // namespace starkv
