// The engine's error types. Every invalid input or resource failure is a starkv::Error whose message
// names the file, tensor or field at fault; cancellation unwinds with starkv::Cancelled.
#pragma once

#include <stdexcept>
#include <string>

namespace starkv {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A device allocation that did not fit (the message names what, and the device's free and total
// memory). Device "auto" loads a model on the CPU instead when its weights do not fit the GPU.
struct OutOfDeviceMemory : Error {
  using Error::Error;
};

// Thrown from between two layers or two tokens when the caller asked to stop; not a failure.
struct Cancelled : std::runtime_error {
  Cancelled() : std::runtime_error("cancelled") {}
};

}  // namespace starkv
