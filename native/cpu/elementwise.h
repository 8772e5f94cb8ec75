// Per-element math of the backend ops, as small inline functions that a CUDA build can compile as
// __host__ __device__ (STARKV_HD). fp32 in and out, matching torch's fp32 definitions.
#pragma once

#include <cmath>

#include "core/hd.h"

namespace starkv::ew {

STARKV_HD inline float Sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
// torch.nn.functional.silu: x * sigmoid(x)
STARKV_HD inline float Silu(float x) { return x / (1.0f + expf(-x)); }
// HF QuickGELUActivation: x * sigmoid(1.702 x)
STARKV_HD inline float QuickGelu(float x) { return x * Sigmoid(1.702f * x); }
// nn.GELU() (exact): 0.5 x (1 + erf(x / sqrt(2)))
STARKV_HD inline float GeluErf(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752440f)); }

// Rotate-half rotary of the pair (x0 = x[j], x1 = x[j + hd/2]) by an angle with cos c, sin s.
STARKV_HD inline void RotatePair(float& x0, float& x1, float c, float s) {
  const float a = x0 * c - x1 * s;
  const float b = x1 * c + x0 * s;
  x0 = a;
  x1 = b;
}

// y = x * inv_rms * w (RMSNorm, after the row's inverse RMS is known)
STARKV_HD inline float RmsScale(float x, float inv_rms, float w) { return w * (x * inv_rms); }
// y = (x - mean) * rstd * w + b (LayerNorm)
STARKV_HD inline float LnScale(float x, float mean, float rstd, float w, float b) { return (x - mean) * rstd * w + b; }

// Attention (both backends' softmax is fp32): the scaled logit, and a logit's weight against the running max.
STARKV_HD inline float AttnLogit(float dot, float scale) { return dot * scale; }
STARKV_HD inline float ExpShift(float x, float m) { return expf(x - m); }

// The inverse RMS from the row's mean square (accumulated in double) and eps, as float like torch.
STARKV_HD inline float InvRms(double mean_sq, float eps) { return 1.0f / sqrtf(static_cast<float>(mean_sq) + eps); }

}  // namespace starkv::ew
