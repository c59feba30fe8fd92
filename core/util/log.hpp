#pragma once
// The stderr logger: one line per record, text ("2026-11-25T17:01:12.123Z info connect id=7 ...")
// or JSON ({"time":...,"level":"info","msg":"connect","id":7,...}). Owned by the caller (serve
// creates one from its flags and passes it down); writes are serialised by a mutex so the store
// thread can log too.
#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace evstream {

enum class LogLevel { debug = 0, info = 1, warn = 2, error = 3, off = 4 };
enum class LogFormat { text, json };

// Parses "debug|info|warn|warning|error|off"; throws evstream::Error on anything else.
LogLevel parse_log_level(std::string_view text);
// Parses "text|json"; throws evstream::Error on anything else.
LogFormat parse_log_format(std::string_view text);

// One key=value field of a log record.
struct LogField {
  std::string_view key;
  std::variant<std::int64_t, std::string_view, double, bool> value;
  LogField(std::string_view k, std::int64_t v) : key(k), value(v) {}
  LogField(std::string_view k, int v) : key(k), value(std::int64_t{v}) {}
  LogField(std::string_view k, std::uint64_t v) : key(k), value(static_cast<std::int64_t>(v)) {}
  LogField(std::string_view k, double v) : key(k), value(v) {}
  LogField(std::string_view k, bool v) : key(k), value(v) {}
  LogField(std::string_view k, std::string_view v) : key(k), value(v) {}
  LogField(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
  LogField(std::string_view k, const std::string& v) : key(k), value(std::string_view(v)) {}
};

class Logger {
 public:
  explicit Logger(LogLevel level = LogLevel::info, LogFormat format = LogFormat::text, int fd = 2);
  bool enabled(LogLevel level) const { return level >= m_level; }
  void log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields = {});
  void debug(std::string_view m, std::initializer_list<LogField> f = {}) {
    log(LogLevel::debug, m, f);
  }
  void info(std::string_view m, std::initializer_list<LogField> f = {}) {
    log(LogLevel::info, m, f);
  }
  void warn(std::string_view m, std::initializer_list<LogField> f = {}) {
    log(LogLevel::warn, m, f);
  }
  void error(std::string_view m, std::initializer_list<LogField> f = {}) {
    log(LogLevel::error, m, f);
  }
  // Formats one record without writing it (used by tests).
  std::string format(LogLevel level, std::string_view message,
                     std::initializer_list<LogField> fields) const;

 private:
  LogLevel m_level;
  LogFormat m_format;
  int m_fd;
  std::mutex m_mutex;
};

}  // namespace evstream
