// A whole file in memory (the safetensors shards), read-only. RAII; throws starkv::Error naming the file
// when it cannot be opened, mapped or read.
//  - mapped (default): a private map of the file (page-cache pages, shared with other readers and
//    evictable).
//  - resident: the file read into anonymous memory with transparent huge pages. Streaming many GB
//    through 4 KiB page-cache pages is page-walk bound (decode reads every weight per token: measured
//    ~28 GB/s over 8 GB of a mapping against ~42 GB/s from huge pages here; the same for 1 GB); the
//    price is memory that is not shared and not evictable. Falls back to mapped when the anonymous
//    memory cannot be had.
#pragma once

#include <cstddef>
#include <string>

namespace starkv {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path, bool resident = false);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  const unsigned char* data() const { return static_cast<const unsigned char*>(ptr_); }
  size_t size() const { return size_; }
  bool resident() const { return resident_; }

 private:
  std::string path_;
  void* ptr_ = nullptr;
  size_t size_ = 0;
  size_t map_bytes_ = 0;
  bool resident_ = false;
};

}  // namespace starkv
