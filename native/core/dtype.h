// Element types of checkpoint tensors (BF16, F16, F32) and exact conversions to fp32.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include "core/hd.h"

namespace starkv {

enum class DType : uint8_t { F32 = 0, BF16 = 1, F16 = 2 };

inline size_t DTypeSize(DType t) { return t == DType::F32 ? 4 : 2; }
inline const char* DTypeName(DType t) { return t == DType::F32 ? "F32" : t == DType::BF16 ? "BF16" : "F16"; }
// Throws starkv::Error for anything else (the message names `where`).
DType ParseDType(const std::string& s, const std::string& where);

STARKV_HD inline float Bf16ToF32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// IEEE half -> float, exact (subnormals, inf and NaN included).
STARKV_HD inline float F16ToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  uint32_t u;
  if (exp == 0x1f) {
    u = sign | 0x7f800000u | (man << 13);
  } else if (exp != 0) {
    u = sign | ((exp + 112u) << 23) | (man << 13);
  } else if (man == 0) {
    u = sign;
  } else {  // subnormal: normalise
    int e = -1;
    do {
      ++e;
      man <<= 1;
    } while ((man & 0x400u) == 0);
    u = sign | ((112u - static_cast<uint32_t>(e)) << 23) | ((man & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round-to-nearest-even float -> bf16, subnormals kept, as torch's cast (the CPU's bf16 prefill path,
// tests and bf16 emulation; not the fp32 path).
STARKV_HD inline uint16_t F32ToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// n floats -> bf16 with F32ToBf16 (the compiler vectorises the loop; AVX512-BF16's vcvtneps2bf16 would
// flush subnormals to zero, which torch does not).
inline void F32ToBf16Row(const float* src, uint16_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = F32ToBf16(src[i]);
}

// Element i of a tensor of dtype t, as fp32.
STARKV_HD inline float LoadF32(const void* p, DType t, int64_t i) {
  if (t == DType::F32) {
    float f;
    std::memcpy(&f, static_cast<const char*>(p) + 4 * i, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, static_cast<const char*>(p) + 2 * i, 2);
  return t == DType::BF16 ? Bf16ToF32(h) : F16ToF32(h);
}

}  // namespace starkv
