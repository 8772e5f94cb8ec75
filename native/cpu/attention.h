// CPU attention (prefill, decode and vision segments) over the strided layout of AttnArgs.
#pragma once

#include "core/backend.h"
#include "core/memory.h"
#include "core/thread_pool.h"

namespace starkv::cpu {

// bf16 (the CPU's bf16 prefill path, needs oneDNN's bf16 matmul): blocks of 16 or more query rows
// multiply in bf16 with fp32 accumulation (Q, K, V and the probabilities rounded to bf16, as torch runs
// a bf16 model); decode rows and bf16 = false stay fp32.
void Attention(ThreadPool& pool, MemoryAccount* account, const AttnArgs& a, bool use_dnnl, bool bf16 = false);

}  // namespace starkv::cpu
