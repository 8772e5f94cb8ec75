// Time per kind of backend op, collected only while enabled (`starkv bench --profile`, the model's
// opProfile()): what a researcher or the next optimisation needs to know of a prefill or a decode step,
// where the time goes (matmuls, attention, norms, copies) and how much of the wall time no op accounts
// for (host work, or on a device, the device waiting for the host).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace starkv {

struct OpTime {
  std::string op;
  int64_t calls = 0;
  double ms = 0;
};

class OpProfile {
 public:
  void Enable(bool on);
  bool on() const { return on_; }
  void Add(const std::string& op, double ms);  // thread-safe
  // What was collected since the last call, most time first; resets.
  std::vector<OpTime> Take();

  // Host wall time of one op (ops that finish before they return: every CPU op, host work of a device).
  class Scope {
   public:
    Scope(OpProfile* p, const char* op) : p_(p && p->on() ? p : nullptr), op_(op) {
      if (p_) t0_ = std::chrono::steady_clock::now();
    }
    ~Scope() {
      if (p_) p_->Add(op_, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0_).count());
    }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    OpProfile* p_;
    const char* op_;
    std::chrono::steady_clock::time_point t0_;
  };

 private:
  std::atomic<bool> on_{false};
  std::mutex mu_;
  std::map<std::string, OpTime> ops_;
};

// The profile's names for ops whose cost depends on their shape (a decode step against a prefill).
inline const char* MatMulOpName(int64_t M) { return M <= 4 ? "matmul decode (M <= 4)" : "matmul"; }
inline const char* AttentionOpName(int64_t n_q) { return n_q < 16 ? "attention decode (< 16 rows)" : "attention prefill"; }

}  // namespace starkv
