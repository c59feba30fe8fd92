#include "core/util/log.hpp"

#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <variant>

#include "core/util/error.hpp"

namespace evstream {
namespace {

std::string_view level_name(LogLevel level) {
  switch (level) {
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warn:
      return "warn";
    case LogLevel::error:
      return "error";
    case LogLevel::off:
      break;
  }
  return "off";
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// RFC 3339 UTC with milliseconds, e.g. "2026-11-25T17:01:12.123Z". <chrono> calendar types avoid
// gmtime's shared static buffer.
std::string now_rfc3339_ms() {
  using namespace std::chrono;
  const auto now = time_point_cast<milliseconds>(system_clock::now());
  const auto day = floor<days>(now);
  const year_month_day date{day};
  const hh_mm_ss time{now - day};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", int(date.year()),
                unsigned(date.month()), unsigned(date.day()), int(time.hours().count()),
                int(time.minutes().count()), int(time.seconds().count()),
                int(time.subseconds().count()));
  return buf;
}

// Appends `text` with control characters, quotes and backslashes escaped, so a record can never
// span two lines whatever a client sent.
void append_escaped(std::string& out, std::string_view text) {
  constexpr std::string_view kHex = "0123456789abcdef";
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (byte < 0x20 || byte == 0x7f) {
      out += "\\x";
      out += kHex[byte >> 4];
      out += kHex[byte & 0x0f];
    } else {
      out += c;
    }
  }
}

bool needs_quotes(std::string_view text) {
  if (text.empty()) return true;
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == ' ' || c == '"' || c == '=' || c == '\\' || byte < 0x20 || byte == 0x7f) return true;
  }
  return false;
}

void append_text_value(std::string& out, const LogField& field) {
  std::visit(
      [&out](const auto& value) {
        using T = std::decay_t<decltype(value)>;
        if constexpr (std::is_same_v<T, std::string_view>) {
          if (!needs_quotes(value)) {
            out += value;
            return;
          }
          out += '"';
          append_escaped(out, value);
          out += '"';
        } else if constexpr (std::is_same_v<T, bool>) {
          out += value ? "true" : "false";
        } else {
          char buf[64];
          const auto result = std::to_chars(buf, buf + sizeof buf, value);  // shortest round-trip
          out.append(buf, result.ptr);
        }
      },
      field.value);
}

std::string format_text(std::string_view time, LogLevel level, std::string_view message,
                        std::initializer_list<LogField> fields) {
  std::string line(time);
  line += ' ';
  line += level_name(level);
  line += ' ';
  // The message is not quoted (it is the readable part) but still cannot break the line.
  append_escaped(line, message);
  for (const LogField& field : fields) {
    line += ' ';
    line += field.key;
    line += '=';
    append_text_value(line, field);
  }
  return line;
}

std::string format_json(std::string_view time, LogLevel level, std::string_view message,
                        std::initializer_list<LogField> fields) {
  nlohmann::ordered_json record;  // keeps time, level, msg, then fields in the order given
  record["time"] = time;
  record["level"] = level_name(level);
  record["msg"] = message;
  for (const LogField& field : fields) {
    std::visit([&](const auto& value) { record[std::string(field.key)] = value; }, field.value);
  }
  // Client-supplied text may be invalid UTF-8; replace it rather than throw mid-log.
  return record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// One write(2) per line so concurrent writers (other processes on the same stderr) never interleave
// within a record; the loop only matters for EINTR or a short write to a full pipe.
void write_line(int fd, std::string_view line) {
  while (!line.empty()) {
    const ssize_t written = ::write(fd, line.data(), line.size());
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return;  // nowhere left to report a failing log sink
    line.remove_prefix(static_cast<std::size_t>(written));
  }
}

}  // namespace

LogLevel parse_log_level(std::string_view text) {
  const std::string name = lower(text);
  if (name == "debug") return LogLevel::debug;
  if (name == "info") return LogLevel::info;
  if (name == "warn" || name == "warning") return LogLevel::warn;
  if (name == "error") return LogLevel::error;
  if (name == "off") return LogLevel::off;
  throw Error("invalid log level \"" + std::string(text) +
              "\": expected debug, info, warn, error or off");
}

LogFormat parse_log_format(std::string_view text) {
  const std::string name = lower(text);
  if (name == "text") return LogFormat::text;
  if (name == "json") return LogFormat::json;
  throw Error("invalid log format \"" + std::string(text) + "\": expected text or json");
}

Logger::Logger(LogLevel level, LogFormat format, int fd)
    : m_level(level), m_format(format), m_fd(fd) {}

std::string Logger::format(LogLevel level, std::string_view message,
                           std::initializer_list<LogField> fields) const {
  const std::string time = now_rfc3339_ms();
  return m_format == LogFormat::json ? format_json(time, level, message, fields)
                                     : format_text(time, level, message, fields);
}

void Logger::log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields) {
  if (level == LogLevel::off || !enabled(level)) return;
  // Callers include lws and sqlite callbacks, which nothing may throw through; losing one line
  // when memory runs out is the lesser harm.
  try {
    std::string line = format(level, message, fields);
    line += '\n';
    const std::lock_guard lock(m_mutex);
    write_line(m_fd, line);
  } catch (...) {
  }
}

}  // namespace evstream
