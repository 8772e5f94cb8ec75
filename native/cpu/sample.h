// Token choice from logits: greedy argmax (lowest index wins ties, like torch.argmax) or seeded
// sampling with temperature, top-k and top-p (nucleus), deterministic for a given seed.
#pragma once

#include <cstdint>
#include <random>

#include "core/backend.h"

namespace starkv::cpu {

int32_t Argmax(const float* x, int64_t n);
int32_t Sample(float* logits, int64_t n, const SampleParams& p, std::mt19937_64& rng);

}  // namespace starkv::cpu
