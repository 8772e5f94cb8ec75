// The engine's error types. Every invalid input or resource failure is a starkv::Error whose message
// names the file, tensor or field at fault; cancellation unwinds with starkv::Cancelled.
#pragma once

#include <stdexcept>
#include <string>

namespace starkv {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Thrown from between two layers or two tokens when the caller asked to stop; not a failure.
struct Cancelled : std::runtime_error {
  Cancelled() : std::runtime_error("cancelled") {}
};

}  // namespace starkv
