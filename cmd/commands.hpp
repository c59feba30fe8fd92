#pragma once
// One entry per subcommand: `add_x` declares its options on the app, and returns the function that
// runs it once parsing succeeded (the function's result is the process exit status).
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "core/util/error.hpp"
#include "core/util/util.hpp"

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

// --url on the client subcommands: repeatable, each value a comma-separated list of servers to fail
// over between in order (SPEC "Cluster"); also from EVSTREAM_URL (cmd/config). Empty when not
// given.
inline CLI::Option* add_urls_option(CLI::App* sub, std::vector<std::string>& urls,
                                    const std::string& description) {
  return sub->add_option("--url", urls, description)
      ->allow_extra_args(false)              // `--url A EVENT`: EVENT stays positional
      ->default_str("ws://localhost:8000");  // what server_urls() uses when none is given
}

// Checks for the flags that take a duration ("30s") or a size ("1MiB"): a bad value is refused
// while parsing, naming its flag, variable or config file line. Empty is "not set".
inline CLI::Validator value_check(std::uint64_t (*parse)(std::string_view), const char* what) {
  return CLI::Validator(
      [parse](std::string& text) -> std::string {
        if (text.empty()) return {};
        try {
          parse(text);
          return {};
        } catch (const evstream::Error& e) {
          return e.what();
        }
      },
      what);
}
inline CLI::Validator duration_check() {
  return value_check(
      [](std::string_view text) { return static_cast<std::uint64_t>(parse_duration_us(text)); },
      "DURATION");
}
inline CLI::Validator size_check() {
  return value_check(parse_size, "SIZE");
}

// The --url values as servers (the default when none), `path` added to each that has none.
inline std::vector<WsUrl> server_urls(const std::vector<std::string>& values,
                                      const std::string& path) {
  return parse_ws_url_list(
      values.empty() ? std::vector<std::string>{"ws://localhost:8000"} : values, path);
}

// Adds ?token=T (or &token=T) to every server's path.
inline void add_token(std::vector<WsUrl>& urls, const std::string& token) {
  if (token.empty()) return;
  for (WsUrl& url : urls) {
    url.path +=
        (url.path.find('?') == std::string::npos ? "?token=" : "&token=") + url_encode(token);
  }
}

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
