// A fixed pool of std::threads owned by one model. Work is split into contiguous ranges in a fixed way
// that depends only on the problem size and the pool size, and each output element is produced by one
// thread, so results do not depend on scheduling.
// Dispatch: a worker that has just finished spins for a short while (kSpin) on the job counter before it
// sleeps on the condition variable, and the caller spins likewise on the completion count: decode calls
// the pool ~100 times per token for jobs of 0.05-1 ms, where a futex wake-up per job costs several %.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace starkv {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // threads <= 0: hardware_concurrency
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs fn(t, nt) on nt = min(size(), max_threads) threads (t = 0 on the caller); returns when all are
  // done. The first exception thrown by any of them is rethrown here.
  void Run(int max_threads, const std::function<void(int t, int nt)>& fn);

  // Splits [0, n) into chunks of at least `grain` items, one contiguous range per thread.
  void ParallelFor(int64_t n, int64_t grain, const std::function<void(int64_t begin, int64_t end)>& fn);

 private:
  void WorkerLoop(int index);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_start_, cv_done_;
  const std::function<void(int, int)>* job_ = nullptr;  // written before generation_ is bumped
  int job_threads_ = 0;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  std::exception_ptr error_;
};

}  // namespace starkv
