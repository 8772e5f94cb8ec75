// Row-wise and element-wise CPU ops (norms, rotary, activations, add, gather), threaded over rows.
#pragma once

#include <cstdint>

#include "core/backend.h"
#include "core/thread_pool.h"

namespace starkv::cpu {

void RowNorms(ThreadPool& pool, const float* x, int64_t rows, int64_t width, float* y);
void RmsNorm(ThreadPool& pool, const float* x, int64_t M, int64_t D, const Tensor& w, float eps, float* y);
void LayerNorm(ThreadPool& pool, const float* x, int64_t M, int64_t D, const Tensor& w, const Tensor& b, float eps,
               float* y);
void Rotary(ThreadPool& pool, float* x, int64_t n, int64_t row, int heads, int hd, const float* cos, const float* sin);
void GatedAct(ThreadPool& pool, Act act, const float* gate, const float* up, int64_t n, float* out);
void Activation(ThreadPool& pool, Act act, float* x, int64_t n);
void Add(ThreadPool& pool, float* y, const float* x, int64_t n);
void GatherRows(ThreadPool& pool, const Tensor& table, const int32_t* ids, int64_t n, float* out);

}  // namespace starkv::cpu
