// Byte accounting by category (weights, kv, activations, workspace; current and peak) and the one
// owning buffer type every engine allocation goes through. One MemoryAccount per model.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

namespace starkv {

enum class MemCategory : int { Weights = 0, Kv = 1, Activations = 2, Workspace = 3 };
constexpr int kMemCategories = 4;
const char* MemCategoryName(MemCategory c);
// "15.45 GiB": sizes in messages.
std::string GiB(double bytes);

struct MemStat {
  int64_t current = 0;
  int64_t peak = 0;
};

class MemoryAccount {
 public:
  void Add(MemCategory c, int64_t bytes);
  void Sub(MemCategory c, int64_t bytes);
  MemStat Get(MemCategory c) const;

 private:
  std::atomic<int64_t> current_[kMemCategories] = {};
  std::atomic<int64_t> peak_[kMemCategories] = {};
};

// A 64-byte aligned, zero-initialised allocation counted in `account` under `cat` while it lives.
// Large ones (kMappedBytes and up: a screenshot's activations are hundreds of MB) are anonymous
// mappings, zero from the kernel and asked for transparent huge pages: no memset, and 2 MiB faults
// instead of 4 KiB ones (page faults are slow in virtual machines). Throws starkv::Error ("out of
// memory ...") when the allocation cannot be made.
class Buffer {
 public:
  using FreeFn = void (*)(void*);
  Buffer() = default;
  Buffer(MemoryAccount* account, MemCategory cat, size_t bytes);
  // Adopts memory allocated elsewhere (a device allocation): counted while it lives, freed with `free_fn`.
  Buffer(MemoryAccount* account, MemCategory cat, void* adopted, size_t bytes, FreeFn free_fn);
  ~Buffer() { Release(); }
  Buffer(Buffer&& o) noexcept { *this = static_cast<Buffer&&>(o); }
  Buffer& operator=(Buffer&& o) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  void Release();
  void* data() const { return ptr_; }
  size_t bytes() const { return bytes_; }
  template <class T>
  T* as() const { return static_cast<T*>(ptr_); }
  float* f() const { return static_cast<float*>(ptr_); }

 private:
  MemoryAccount* account_ = nullptr;
  MemCategory cat_ = MemCategory::Activations;
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
  FreeFn free_fn_ = nullptr;  // null: std::free (or munmap when mapped_)
  bool mapped_ = false;
};

constexpr size_t kMappedBytes = size_t(4) << 20;

// Buffer of n floats.
inline Buffer Floats(MemoryAccount* a, MemCategory c, int64_t n) {
  return Buffer(a, c, static_cast<size_t>(n < 0 ? 0 : n) * sizeof(float));
}

// Physical memory of the machine in bytes (0 if unknown), and what is available now (-1 if unknown).
int64_t PhysicalMemoryBytes();
int64_t AvailableMemoryBytes();

}  // namespace starkv
