// mmap(PROT_READ, MAP_PRIVATE) of a whole file, or the file read into anonymous huge pages.
#include "core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace starkv {

MappedFile::MappedFile(const std::string& path, bool resident) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open (" + std::strerror(errno) + ")");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    throw Error(path + ": cannot stat (" + std::strerror(e) + ")");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": not a regular file");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0 && resident) {
    const size_t huge = size_t(2) << 20;
    const size_t bytes = (size_ + huge - 1) / huge * huge;
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) {
      ::madvise(p, bytes, MADV_HUGEPAGE);
      size_t done = 0;
      while (done < size_) {
        const ssize_t r = ::pread(fd, static_cast<char*>(p) + done, std::min<size_t>(size_ - done, size_t(64) << 20),
                                  static_cast<off_t>(done));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
          const int e = r < 0 ? errno : EIO;
          ::munmap(p, bytes);
          ::close(fd);
          throw Error(path + ": cannot read byte " + std::to_string(done) + " of " + std::to_string(size_) + " (" +
                      (r < 0 ? std::strerror(e) : "file shrank while reading") + ")");
        }
        done += static_cast<size_t>(r);
      }
      ::mprotect(p, bytes, PROT_READ);  // the weights are read-only, as in a mapping
      ptr_ = p;
      map_bytes_ = bytes;
      resident_ = true;
    }
  }
  if (size_ > 0 && !ptr_) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (p == MAP_FAILED) {
      const int e = errno;
      ::close(fd);
      throw Error(path + ": cannot mmap " + std::to_string(size_) + " bytes (" + std::strerror(e) + ")");
    }
    ptr_ = p;
    map_bytes_ = size_;
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (ptr_) ::munmap(ptr_, map_bytes_);
}

}  // namespace starkv
