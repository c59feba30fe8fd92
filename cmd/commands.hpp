#pragma once
// One entry per subcommand: `add_x` declares its options on the app, and returns the function that
// runs it once parsing succeeded (the function's result is the process exit status).
#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "core/util/error.hpp"

namespace evstream::cmd {

using Runner = std::function<int()>;

// A bad flag value found after parsing; main prints it and exits with kExitUsage.
class UsageError : public evstream::Error {
 public:
  using evstream::Error::Error;
};

Runner add_serve(CLI::App& app);
Runner add_publish(CLI::App& app);
Runner add_tail(CLI::App& app);
Runner add_replay(CLI::App& app);
Runner add_loadtest(CLI::App& app);

// The hint after "cannot reach URL: reason": a refused token already says what to do.
inline std::string reach_hint(const std::string& reason, const std::string& retry_timeout = {}) {
  if (reason.find("--token") != std::string::npos) return "";
  if (retry_timeout.empty()) return " (is `evstream serve` running there?)";
  return " (is `evstream serve` running there? --retry-timeout " + retry_timeout + " passed)";
}

// Exit statuses shared by every subcommand (SPEC).
inline constexpr int kExitOk = 0;
inline constexpr int kExitRejected = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnavailable = 69;

}  // namespace evstream::cmd
