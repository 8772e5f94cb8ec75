// Pool: generation counter + condition variables; the caller is thread 0.
#include "core/thread_pool.h"

#include <algorithm>

namespace starkv {

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  threads = std::min(threads, 256);
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_.store(true);
  }
  cv_start_.notify_all();
  for (auto& w : workers_) w.join();
}

namespace {

// About 20-50 us of polling: longer than a futex wake-up, far shorter than the gaps between tokens.
constexpr int kSpin = 20000;

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

}  // namespace

void ThreadPool::WorkerLoop(int index) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t gen = generation_.load(std::memory_order_acquire);
    for (int i = 0; gen == seen && i < kSpin && !stop_.load(std::memory_order_relaxed); ++i) {
      CpuRelax();
      gen = generation_.load(std::memory_order_acquire);
    }
    if (gen == seen) {
      std::unique_lock<std::mutex> lk(mu_);
      cv_start_.wait(lk, [&] { return stop_.load() || generation_.load() != seen; });
      gen = generation_.load(std::memory_order_acquire);
    }
    if (stop_.load()) return;
    seen = gen;
    const std::function<void(int, int)>* job = job_;
    const int nt = job_threads_;
    if (index >= nt) continue;  // not needed this round
    try {
      (*job)(index, nt);
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu_);
      if (!error_) error_ = std::current_exception();
    }
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lk(mu_);  // the caller may be about to sleep: no lost wake-up
      cv_done_.notify_one();
    }
  }
}

void ThreadPool::Run(int max_threads, const std::function<void(int, int)>& fn) {
  const int nt = std::max(1, std::min(size(), max_threads));
  if (nt == 1) {
    fn(0, 1);
    return;
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    job_ = &fn;
    job_threads_ = nt;
    pending_.store(nt - 1, std::memory_order_relaxed);
    error_ = nullptr;
    generation_.fetch_add(1, std::memory_order_release);
  }
  cv_start_.notify_all();
  std::exception_ptr mine;
  try {
    fn(0, nt);
  } catch (...) {
    mine = std::current_exception();
  }
  for (int i = 0; i < kSpin && pending_.load(std::memory_order_acquire) != 0; ++i) CpuRelax();
  std::exception_ptr theirs;
  {
    std::unique_lock<std::mutex> lk(mu_);
    cv_done_.wait(lk, [&] { return pending_.load(std::memory_order_acquire) == 0; });
    job_ = nullptr;
    theirs = error_;
    error_ = nullptr;
  }
  if (mine) std::rethrow_exception(mine);
  if (theirs) std::rethrow_exception(theirs);
}

void ThreadPool::ParallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(size(), (n + grain - 1) / grain));
  if (chunks == 1) {
    fn(0, n);
    return;
  }
  Run(static_cast<int>(chunks), [&](int t, int nt) {
    const int64_t b = n * t / nt, e = n * (t + 1) / nt;
    if (b < e) fn(b, e);
  });
}

}  // namespace starkv
