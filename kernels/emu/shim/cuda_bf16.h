// Host-emulation stand-ins (kernels/emu/run.sh only; never built into the engine).
#pragma once
#include <cstdint>
struct __nv_bfloat16 { uint16_t x; };
inline __nv_bfloat16 __float2bfloat16_rn(float) { return __nv_bfloat16{0}; }
