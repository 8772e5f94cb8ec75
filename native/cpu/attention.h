// CPU attention (prefill, decode and vision segments) over the strided layout of AttnArgs.
#pragma once

#include "core/backend.h"
#include "core/memory.h"
#include "core/thread_pool.h"

namespace starkv::cpu {

void Attention(ThreadPool& pool, MemoryAccount* account, const AttnArgs& a, bool use_dnnl);

}  // namespace starkv::cpu
