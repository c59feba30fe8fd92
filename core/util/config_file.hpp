#pragma once
// The structure of a --config file: its `key = value` lines with their line numbers, so that every
// complaint about the file can name the line. Values are left as text: cmd/ hands them to CLI11,
// which reads them as it reads its own TOML/INI files (quotes, [arrays], numbers, true/false).
#include <string>
#include <string_view>
#include <vector>

#include "core/util/error.hpp"

namespace evstream {

// One `key = value` of a config file. `value` is the text after '=', trimmed, its comment removed
// and, for an array written over several lines, those lines joined into one.
struct ConfigLine {
  int line = 0;  // 1-based, where the key stands
  std::string key;
  std::string value;
};

// A config file that cannot be read or whose structure is wrong. `line` is 0 when the problem is
// the file itself (missing, unreadable); the message does not repeat the file name or line.
class ConfigFileError : public Error {
 public:
  ConfigFileError(int line, const std::string& message) : Error(message), m_line(line) {}
  int line() const { return m_line; }

 private:
  int m_line;
};

// Splits a config file's text into its key = value lines, in file order. Accepted: blank lines,
// comments ('#' or ';' at the start of a line, '#' after a value outside quotes), `key = value` and
// `"key" = value`, arrays over several lines. Refused with the line: a [section] (keys are top
// level), a line without '=', an empty key or value, a key given twice, an unterminated string or
// array.
std::vector<ConfigLine> parse_config_text(std::string_view text);

// parse_config_text of the file at `path`; ConfigFileError(0, why) when it cannot be read.
std::vector<ConfigLine> read_config_file(const std::string& path);

// The environment variable of a long flag: "retain-age" -> "EVSTREAM_RETAIN_AGE".
std::string flag_env_name(std::string_view long_name);

// Options whose values are secrets (--token, --read-token): never printed or echoed in errors.
bool is_secret_option(std::string_view long_name);

// What --print-config writes in place of a secret (and refuses to read back as one).
inline constexpr std::string_view kSecretMask = "***";

// The name among `names` closest to `name` (a typo: at most 2 edits, or '_' for '-'), or "" when
// none is close: for "did you mean" hints.
std::string closest_name(std::string_view name, const std::vector<std::string>& names);

}  // namespace evstream
