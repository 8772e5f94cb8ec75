#include "core/op_profile.h"

#include <algorithm>

namespace starkv {

void OpProfile::Enable(bool on) { on_ = on; }

void OpProfile::Add(const std::string& op, double ms) {
  std::lock_guard<std::mutex> lk(mu_);
  OpTime& t = ops_[op];
  t.op = op;
  t.calls += 1;
  t.ms += ms;
}

std::vector<OpTime> OpProfile::Take() {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<OpTime> out;
  for (auto& [name, t] : ops_) out.push_back(t);
  ops_.clear();
  std::sort(out.begin(), out.end(), [](const OpTime& a, const OpTime& b) { return a.ms != b.ms ? a.ms > b.ms : a.op < b.op; });
  return out;
}

}  // namespace starkv
