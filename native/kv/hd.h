// STARKV_HD marks per-element math shared by the CPU code and CUDA kernels (defined in core/hd.h).
#pragma once

#include "core/hd.h"
