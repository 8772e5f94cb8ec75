// Host-emulation stand-ins (kernels/emu/run.sh only; never built into the engine).
#pragma once
#include <cstdint>
#include <cstring>
struct __half { uint16_t x; };
inline __half __float2half_rn(float f) {  // round to nearest even through the compiler's _Float16
  const _Float16 h = static_cast<_Float16>(f);
  __half r;
  std::memcpy(&r.x, &h, 2);
  return r;
}
