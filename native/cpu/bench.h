// Machine limits for `starkv bench`: best fp32 GEMM throughput (the prefill GEMM path) and memory
// read bandwidth (what decode is bound by), measured with the engine's own pool.
#pragma once

#include <cstdint>
#include <string>

namespace starkv::cpu {

struct BenchLimits {
  double sgemm_gflops = 0;        // the fp32 GEMM peak: the best of the two below
  double own_sgemm_gflops = 0;    // oneDNN's sgemm (or the built-in GEMM in a build without oneDNN)
  double openblas_gflops = 0;     // OpenBLAS's cblas_sgemm with its core type set; 0 when not installed
  std::string openblas_core;      // the core type OpenBLAS ran with (e.g. "SkylakeX")
  std::string openblas_note;      // why OpenBLAS was not measured
  double bandwidth_gbs = 0;
  double engine_bf16_gflops = 0;  // the engine's own prefill MatMul with a bf16 weight, same shape
  // oneDNN's bf16 x bf16 -> fp32 matmul: the better of its own threads over the whole product (team)
  // and the product cut as the engine's prefill cuts it, each piece single-threaded on a pool thread into
  // a dense tile (split: its AMX brgemm where there is AMX, which the team run does not reach as well);
  // 0 where not fast.
  double bf16_gemm_gflops = 0;
  double bf16_team_gflops = 0, bf16_split_gflops = 0;
  double engine_bf16x_gflops = 0; // the engine's prefill MatMul on its bf16 path (cpuMatmul bf16); 0 likewise
  // The engine's attention on a vision block's shape (full attention over attn_tokens patches, 16 heads of
  // 80): fp32, and on the bf16 path (0 where that is not fast); both 0 when attn_tokens is 0.
  double engine_attn_gflops = 0;
  double engine_attn_bf16_gflops = 0;
};

// Best of `reps` timings each. Throws starkv::Error on bad sizes or allocation failure.
BenchLimits MeasureLimits(int64_t M, int64_t N, int64_t K, int64_t bandwidth_bytes, int reps, int threads,
                          int64_t attn_tokens = 0);

}  // namespace starkv::cpu
