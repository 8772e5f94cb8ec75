// Host-emulation stand-ins (kernels/emu/run.sh only; never built into the engine).
#pragma once
#include <cstdint>
#include "core/dtype.h"
struct __nv_bfloat16 { uint16_t x; };
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __nv_bfloat16{starkv::F32ToBf16(f)}; }
