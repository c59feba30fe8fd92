#pragma once
// The one exception type for setup failures (bad flag, bind, open db). Caught once in main and
// printed as `evstream: error: <what>`; the message says what was wrong and what to do.
#include <stdexcept>
#include <string>

namespace evstream {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// A service evstream depends on (a NATS server) cannot be reached: main exits with 69
// (EX_UNAVAILABLE) instead of 1, so supervisors and scripts can tell "retry later" apart.
class UnavailableError : public Error {
 public:
  using Error::Error;
};

}  // namespace evstream
