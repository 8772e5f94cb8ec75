// Accounting and aligned allocation.
#include "core/memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/error.h"

namespace starkv {

std::string GiB(double bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f GiB", bytes / (1024.0 * 1024.0 * 1024.0));
  return b;
}

const char* MemCategoryName(MemCategory c) {
  switch (c) {
    case MemCategory::Weights: return "weights";
    case MemCategory::Kv: return "kv";
    case MemCategory::Activations: return "activations";
    case MemCategory::Workspace: return "workspace";
  }
  return "?";
}

void MemoryAccount::Add(MemCategory c, int64_t bytes) {
  const int i = static_cast<int>(c);
  const int64_t now = current_[i].fetch_add(bytes) + bytes;
  int64_t p = peak_[i].load();
  while (now > p && !peak_[i].compare_exchange_weak(p, now)) {
  }
}

void MemoryAccount::Sub(MemCategory c, int64_t bytes) { current_[static_cast<int>(c)].fetch_sub(bytes); }

MemStat MemoryAccount::Get(MemCategory c) const {
  const int i = static_cast<int>(c);
  return MemStat{current_[i].load(), peak_[i].load()};
}

// MemAvailable from /proc/meminfo in bytes (-1 if unknown).
int64_t AvailableMemoryBytes() {
  FILE* f = std::fopen("/proc/meminfo", "r");
  if (!f) return -1;
  char line[256];
  int64_t kb = -1;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "MemAvailable: %" SCNd64 " kB", &kb) == 1) break;
  std::fclose(f);
  return kb < 0 ? -1 : kb * 1024;
}

int64_t PhysicalMemoryBytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<int64_t>(pages) * page : 0;
}

Buffer::Buffer(MemoryAccount* account, MemCategory cat, size_t bytes) : account_(account), cat_(cat) {
  if (bytes == 0) return;
  const int64_t phys = PhysicalMemoryBytes();
  const size_t rounded = (bytes + 63) & ~static_cast<size_t>(63);
  if (rounded < bytes || (phys > 0 && rounded > static_cast<size_t>(phys)))
    throw Error(std::string("out of memory: ") + std::to_string(bytes) + " bytes of " + MemCategoryName(cat) +
                " requested, more than the machine's " + std::to_string(phys) + " bytes");
  // Large requests are checked against what the kernel can still give (overcommit would otherwise
  // let the allocation succeed and the process be killed when the pages are touched).
  if (rounded > (size_t(64) << 20)) {
    const int64_t avail = AvailableMemoryBytes();
    if (avail >= 0 && rounded > static_cast<size_t>(avail))
      throw Error(std::string("out of memory: ") + std::to_string(bytes) + " bytes of " + MemCategoryName(cat) +
                  " requested, " + std::to_string(avail) + " bytes available");
  }
  void* p = nullptr;
  if (rounded >= kMappedBytes) {
    p = mmap(nullptr, rounded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) p = nullptr;
    else {
      madvise(p, rounded, MADV_HUGEPAGE);  // advice only: where THP is off, 4 KiB pages
      mapped_ = true;
    }
  } else {
    p = std::aligned_alloc(64, rounded);
    if (p) std::memset(p, 0, rounded);
  }
  if (!p)
    throw Error(std::string("out of memory: could not allocate ") + std::to_string(bytes) + " bytes of " +
                MemCategoryName(cat));
  ptr_ = p;
  bytes_ = bytes;
  if (account_) account_->Add(cat_, static_cast<int64_t>(bytes_));
}

Buffer::Buffer(MemoryAccount* account, MemCategory cat, void* adopted, size_t bytes, FreeFn free_fn)
    : account_(account), cat_(cat), ptr_(adopted), bytes_(adopted ? bytes : 0), free_fn_(free_fn) {
  if (ptr_ && account_) account_->Add(cat_, static_cast<int64_t>(bytes_));
}

Buffer& Buffer::operator=(Buffer&& o) noexcept {
  if (this != &o) {
    Release();
    account_ = o.account_;
    cat_ = o.cat_;
    ptr_ = o.ptr_;
    bytes_ = o.bytes_;
    free_fn_ = o.free_fn_;
    mapped_ = o.mapped_;
    o.ptr_ = nullptr;
    o.bytes_ = 0;
  }
  return *this;
}

void Buffer::Release() {
  if (ptr_) {
    if (free_fn_) free_fn_(ptr_);
    else if (mapped_) munmap(ptr_, (bytes_ + 63) & ~static_cast<size_t>(63));
    else std::free(ptr_);
    if (account_) account_->Sub(cat_, static_cast<int64_t>(bytes_));
  }
  ptr_ = nullptr;
  bytes_ = 0;
  mapped_ = false;
}

}  // namespace starkv
