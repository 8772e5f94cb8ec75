// Machine limits for `starkv bench`: best fp32 GEMM throughput (the prefill GEMM path) and memory
// read bandwidth (what decode is bound by), measured with the engine's own pool.
#pragma once

#include <cstdint>

namespace starkv::cpu {

struct BenchLimits {
  double sgemm_gflops = 0;
  double bandwidth_gbs = 0;
  double engine_bf16_gflops = 0;  // the engine's own prefill MatMul with a bf16 weight, same shape
};

// Best of `reps` timings each. Throws starkv::Error on bad sizes or allocation failure.
BenchLimits MeasureLimits(int64_t M, int64_t N, int64_t K, int64_t bandwidth_bytes, int reps, int threads);

}  // namespace starkv::cpu
