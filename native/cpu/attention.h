// CPU attention (prefill, decode and vision segments) over the strided layout of AttnArgs.
#pragma once

#include <cstdint>

#include "core/backend.h"
#include "core/memory.h"
#include "core/thread_pool.h"

namespace starkv::cpu {

// bf16 (the CPU's bf16 prefill path, needs oneDNN's bf16 matmul): blocks of 16 or more query rows
// multiply in bf16 with fp32 accumulation (Q, K, V and the probabilities rounded to bf16, as torch runs
// a bf16 model); decode rows and bf16 = false stay fp32.
// Keys are taken in chunks of this many slots with an online softmax (running max and sum per row, the
// output rescaled when the max grows, divided by the sum at the end): a chunk's scores stay in cache
// whatever the span (flash-attention style). On the bf16 path the chunk's unnormalised probabilities
// exp(s - running max) are rounded to bf16 (as torch's CPU flash attention does for bf16).
constexpr int64_t kAttnKeyChunk = 512;

// kv_cache (optional): where the bf16 path keeps its bf16 copy of K and V, grown on demand and kept
// for the next call: a fresh buffer per call is tens of MB of first-touch page faults per vision block
// (measured ~110 ms for 60 MB on this VM), the conversion itself ~10 ms.
void Attention(ThreadPool& pool, MemoryAccount* account, const AttnArgs& a, bool use_dnnl, bool bf16 = false,
               Buffer* kv_cache = nullptr);

}  // namespace starkv::cpu
