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

}  // namespace evstream
