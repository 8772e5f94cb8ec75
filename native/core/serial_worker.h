// One thread that runs posted jobs in order (a model's engine thread). Jobs get `closing` = true when
// they are drained at shutdown without being run normally, so they can report "disposed".
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace starkv {

class SerialWorker {
 public:
  using Job = std::function<void(bool closing)>;
  SerialWorker();
  ~SerialWorker();  // Close() then join
  SerialWorker(const SerialWorker&) = delete;
  SerialWorker& operator=(const SerialWorker&) = delete;

  // Queues a job; returns false (and does not queue) once closed.
  bool Post(Job job);
  // No new jobs; queued ones run with closing = true; the running one finishes first.
  void Close();
  void Join();

 private:
  void Loop();
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  bool closed_ = false;
  std::thread thread_;
};

}  // namespace starkv
