// Named intermediate tensors recorded on request (golden comparisons, debugging). Not accounted
// memory: tracing is for small models and tests.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace starkv::qwen2vl {

struct TraceArray {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

class Trace {
 public:
  // A zeroed array of `shape` under `name` (replacing any earlier one); returns its data.
  float* Put(const std::string& name, std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    TraceArray& a = arrays[name];
    a.shape = std::move(shape);
    a.data.assign(static_cast<size_t>(n), 0.0f);
    return a.data.data();
  }
  // The array `name` (created with `shape` if absent), for filling in pieces.
  float* Get(const std::string& name, const std::vector<int64_t>& shape) {
    auto it = arrays.find(name);
    return it != arrays.end() ? it->second.data.data() : Put(name, shape);
  }
  std::map<std::string, TraceArray> arrays;
};

}  // namespace starkv::qwen2vl
