// The engine thread's queue.
#include "core/serial_worker.h"

namespace starkv {

SerialWorker::SerialWorker() : thread_([this] { Loop(); }) {}

SerialWorker::~SerialWorker() {
  Close();
  Join();
}

bool SerialWorker::Post(Job job) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (closed_) return false;
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

void SerialWorker::Close() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    closed_ = true;
  }
  cv_.notify_one();
}

void SerialWorker::Join() {
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void SerialWorker::Loop() {
  for (;;) {
    Job job;
    bool closing;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return closed_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // closed and drained
      job = std::move(jobs_.front());
      jobs_.pop_front();
      closing = closed_;
    }
    try {
      job(closing);
    } catch (...) {
      // Jobs report their own errors; nothing may escape the engine thread.
    }
  }
}

}  // namespace starkv
