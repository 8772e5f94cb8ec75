// CudaBackend's KV-compression hooks (native/core/backend.h): the observation-window sums, H2O's
// accumulated attention, VL-Cache's sparsity counts, GUI-KV's key residuals and the compaction of a layer
// run on the device, where the episode's KV store lives, through the kernels of kernels/kv. Only the
// window queries (or the slot lists) go up and the [heads][P] or [heads][L] sums, [heads][rows] counts or
// [kv_heads][n] residuals come down, never a layer's keys or values. Scratch comes from the backend's
// block cache (ordered on its one stream).
#include <cuda_runtime.h>

#include <string>

#include "cuda_backend.h"
#include "cuda_common.cuh"
#include "kv/kv_kernels.h"

namespace starkv::cuda {
namespace {

int64_t FloatsFor(size_t bytes) { return static_cast<int64_t>((bytes + sizeof(float) - 1) / sizeof(float)); }

}  // namespace

kv::WindowArgs CudaBackend::WindowInputs(const float* keys, int64_t capacity, int kv_heads, const float* queries_host,
                                         int64_t q_rows, int heads, int hd, int64_t seq_len, int64_t rows, Buffer& q) {
  const int64_t qf = static_cast<int64_t>(heads) * q_rows * hd;
  q = Alloc(MemCategory::Workspace, qf);
  Upload(queries_host, sizeof(float) * static_cast<size_t>(qf), q.data());
  kv::WindowArgs a;
  a.queries = q.f();
  a.q_rows = q_rows;
  a.keys = keys;
  a.kv_capacity = capacity;
  a.num_heads = heads;
  a.num_kv_heads = kv_heads;
  a.head_dim = hd;
  a.seq_len = seq_len;
  a.rows = rows;
  return a;
}

void CudaBackend::ColumnSums(const float* keys, int64_t capacity, int kv_heads, const float* queries_host,
                             int64_t q_rows, int heads, int hd, int64_t seq_len, int64_t rows, bool all_keys,
                             float* sums_host) {
  const int64_t cols = all_keys ? seq_len : seq_len - rows;
  if (cols <= 0) return;  // nothing to score
  Use();
  const DeviceOpScope prof(this, all_keys ? "kv accumulated sums" : "kv window sums");
  try {
    Buffer q;
    const kv::WindowArgs a = WindowInputs(keys, capacity, kv_heads, queries_host, q_rows, heads, hd, seq_len, rows, q);
    Buffer scratch = Alloc(MemCategory::Workspace, FloatsFor(kv::WindowScratchBytes(a)));
    Buffer sums = Alloc(MemCategory::Workspace, static_cast<int64_t>(heads) * cols);
    if (all_keys) {
      kv::AccumulatedColsum(a, sums.f(), scratch.data(), stream_);
    } else {
      kv::WindowColsum(a, sums.f(), scratch.data(), stream_);
    }
    Download(sums.data(), sizeof(float) * static_cast<size_t>(heads) * cols, sums_host);  // waits for the kernels
  } catch (const kv::CudaKvError& e) {
    throw Error(std::string(all_keys ? "KV accumulated attention on " : "KV window scores on ") + describe_ + ": " +
                e.what());
  }
}

bool CudaBackend::KvWindowSums(const float* keys, int64_t capacity, int kv_heads, const float* queries_host,
                               int64_t q_rows, int heads, int hd, int64_t seq_len, int64_t window, float* sums_host) {
  ColumnSums(keys, capacity, kv_heads, queries_host, q_rows, heads, hd, seq_len, window, false, sums_host);
  return true;
}

bool CudaBackend::KvAccumulatedSums(const float* keys, int64_t capacity, int kv_heads, const float* queries_host,
                                    int64_t q_rows, int heads, int hd, int64_t seq_len, int64_t rows,
                                    float* sums_host) {
  ColumnSums(keys, capacity, kv_heads, queries_host, q_rows, heads, hd, seq_len, rows, true, sums_host);
  return true;
}

bool CudaBackend::KvZeroCounts(const float* keys, int64_t capacity, int kv_heads, const float* queries_host,
                               int64_t q_rows, int heads, int hd, int64_t seq_len, int64_t rows, float threshold,
                               int64_t* zeros_host) {
  Use();
  const DeviceOpScope prof(this, "kv zero counts");
  try {
    Buffer q;
    const kv::WindowArgs a = WindowInputs(keys, capacity, kv_heads, queries_host, q_rows, heads, hd, seq_len, rows, q);
    Buffer scratch = Alloc(MemCategory::Workspace, FloatsFor(kv::WindowScratchBytes(a)));
    const int64_t n = static_cast<int64_t>(heads) * rows;
    Buffer zeros = Alloc(MemCategory::Workspace, 2 * n);  // int64 counts, two floats each
    kv::WindowZeroCounts(a, threshold, static_cast<int64_t*>(zeros.data()), scratch.data(), stream_);
    Download(zeros.data(), sizeof(int64_t) * static_cast<size_t>(n), zeros_host);
  } catch (const kv::CudaKvError& e) {
    throw Error(std::string("KV sparsity counts on ") + describe_ + ": " + e.what());
  }
  return true;
}

bool CudaBackend::KvResiduals(const float* keys, int64_t capacity, int kv_heads, int hd, int64_t cur_start, int rank,
                              const int64_t* positions_host, int64_t n, float* res_host) {
  if (n <= 0) return true;
  Use();
  const DeviceOpScope prof(this, "kv residuals");
  try {
    Buffer pos = Alloc(MemCategory::Workspace, 2 * n);  // int64 slot indices, two floats each
    Upload(positions_host, sizeof(int64_t) * static_cast<size_t>(n), pos.data());
    Buffer scratch = Alloc(MemCategory::Workspace, FloatsFor(kv::LowRankScratchBytes(kv_heads, rank, hd)));
    Buffer res = Alloc(MemCategory::Workspace, static_cast<int64_t>(kv_heads) * n);
    kv::LowRankResidual(keys, capacity, kv_heads, hd, cur_start, rank, static_cast<const int64_t*>(pos.data()), n,
                        res.f(), scratch.data(), stream_);
    Download(res.data(), sizeof(float) * static_cast<size_t>(kv_heads) * n, res_host);
  } catch (const kv::CudaKvError& e) {
    throw Error(std::string("KV key residuals on ") + describe_ + ": " + e.what());
  }
  return true;
}

void CudaBackend::RowNorms(const float* x, int64_t rows, int64_t width, float* y) {
  Use();
  const DeviceOpScope prof(this, "row_norms");
  try {
    kv::RowNorms(x, rows, static_cast<int>(width), width, y, stream_);
  } catch (const kv::CudaKvError& e) {
    throw Error(std::string("row norms on ") + describe_ + ": " + e.what());
  }
}

bool CudaBackend::KvCompact(float* keys, float* values, int kv_heads, int64_t capacity, int hd,
                            const int64_t* kept_host, int lists, int64_t n_keep, int64_t past_len, int64_t window) {
  Use();
  const DeviceOpScope prof(this, "kv compact");
  try {
    const int64_t new_len = n_keep + window;
    if (new_len <= 0) return true;
    // int64 slot indices in a float-sized buffer (two floats each), so the block cache and account see them.
    Buffer kept = Alloc(MemCategory::Workspace, 2 * static_cast<int64_t>(lists) * n_keep);
    if (n_keep > 0) Upload(kept_host, sizeof(int64_t) * static_cast<size_t>(lists) * n_keep, kept.data());
    Buffer scratch = Alloc(MemCategory::Workspace, FloatsFor(kv::CompactScratchBytes(kv_heads, new_len, hd)));
    kv::CompactKv(keys, values, kv_heads, capacity, hd, static_cast<const int64_t*>(kept.data()), lists, n_keep,
                  past_len, window, nullptr, scratch.data(), stream_);
    Synchronize();  // the kept list and scratch go back to the cache; report a failed kernel here
  } catch (const kv::CudaKvError& e) {
    throw Error(std::string("KV compaction on ") + describe_ + ": " + e.what());
  }
  return true;
}

}  // namespace starkv::cuda
