// Shape formatting for error messages, and dtype parsing.
#include "core/tensor.h"

#include "core/error.h"

namespace starkv {

std::string ShapeString(const int64_t* shape, int ndim) {
  std::string s = "[";
  for (int i = 0; i < ndim; ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::string ShapeString(const std::vector<int64_t>& s) { return ShapeString(s.data(), static_cast<int>(s.size())); }

DType ParseDType(const std::string& s, const std::string& where) {
  if (s == "F32") return DType::F32;
  if (s == "BF16") return DType::BF16;
  if (s == "F16") return DType::F16;
  throw Error(where + ": dtype '" + s + "' is not supported (BF16, F16 or F32)");
}

}  // namespace starkv
