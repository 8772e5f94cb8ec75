// A tensor view: dtype, shape and a pointer into memory owned elsewhere (the mmapped checkpoint or an
// allocator buffer). Row-major, contiguous. Trivially copyable, so a CUDA build can pass it by value.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace starkv {

struct Tensor {
  static constexpr int kMaxDims = 6;
  DType dtype = DType::F32;
  int ndim = 0;
  int64_t shape[kMaxDims] = {0, 0, 0, 0, 0, 0};
  const void* data = nullptr;

  bool Valid() const { return data != nullptr; }
  int64_t Numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= shape[i];
    return n;
  }
  size_t Bytes() const { return static_cast<size_t>(Numel()) * DTypeSize(dtype); }
  // First dimension, and the product of the others (a weight [out, in...] seen as a matrix).
  int64_t Rows() const { return ndim == 0 ? 1 : shape[0]; }
  int64_t Cols() const { return ndim == 0 ? 1 : Numel() / (shape[0] == 0 ? 1 : shape[0]); }
  float At(int64_t i) const { return LoadF32(data, dtype, i); }
  // Row r of a matrix view (same dtype).
  const void* Row(int64_t r) const {
    return static_cast<const char*>(data) + static_cast<size_t>(r) * static_cast<size_t>(Cols()) * DTypeSize(dtype);
  }
};

std::string ShapeString(const int64_t* shape, int ndim);
inline std::string ShapeString(const Tensor& t) { return ShapeString(t.shape, t.ndim); }
std::string ShapeString(const std::vector<int64_t>& s);

}  // namespace starkv
