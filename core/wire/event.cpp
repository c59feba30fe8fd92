#include "core/wire/event.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace evstream {

namespace {

bool is_topic_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm), so parsing
// does not depend on the process time zone the way mktime() would.
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// Reads exactly `n` digits at `pos`, advancing it.
std::optional<int> read_digits(std::string_view text, std::size_t& pos, std::size_t n) {
  if (pos + n > text.size()) return std::nullopt;
  int value = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = text[pos + i];
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  pos += n;
  return value;
}

bool expect(std::string_view text, std::size_t& pos, char c) {
  if (pos >= text.size() || text[pos] != c) return false;
  ++pos;
  return true;
}

int days_in_month(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[month - 1];
}

// Parses the fraction after '.', keeping microseconds (extra digits are truncated).
std::optional<std::int64_t> read_fraction_us(std::string_view text, std::size_t& pos) {
  std::int64_t us = 0;
  int digits = 0;
  while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
    if (digits < 6) us = us * 10 + (text[pos] - '0');
    ++digits;
    ++pos;
  }
  if (digits == 0 || digits > 9) return std::nullopt;
  for (int i = digits; i < 6; ++i) us *= 10;
  return us;
}

// Parses "Z" or "+hh:mm"/"-hh:mm" into an offset in seconds east of UTC.
std::optional<std::int64_t> read_offset_s(std::string_view text, std::size_t& pos) {
  if (pos >= text.size()) return std::nullopt;
  const char c = text[pos];
  if (c == 'Z' || c == 'z') {
    ++pos;
    return 0;
  }
  if (c != '+' && c != '-') return std::nullopt;
  ++pos;
  const auto hours = read_digits(text, pos, 2);
  if (!hours || !expect(text, pos, ':')) return std::nullopt;
  const auto minutes = read_digits(text, pos, 2);
  if (!minutes || *hours > 23 || *minutes > 59) return std::nullopt;
  const std::int64_t offset = *hours * 3600 + *minutes * 60;
  return c == '+' ? offset : -offset;
}

}  // namespace

bool is_valid_topic(std::string_view topic) {
  return topic_error(topic).empty();
}

std::string topic_error(std::string_view topic) {
  if (topic.empty()) return "topic is empty; use 1-128 characters of A-Z a-z 0-9 . _ -";
  if (topic.size() > kMaxTopicLength) {
    return "topic is " + std::to_string(topic.size()) +
           " characters long; use 1-128 characters of A-Z a-z 0-9 . _ -";
  }
  for (const char c : topic) {
    if (!is_topic_char(c)) {
      return "topic contains an invalid character; use 1-128 characters of A-Z a-z 0-9 . _ -";
    }
  }
  return {};
}

std::int64_t now_unix_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

std::string format_rfc3339(std::int64_t unix_us) {
  std::int64_t seconds = unix_us / 1'000'000;
  std::int64_t micros = unix_us % 1'000'000;
  if (micros < 0) {
    micros += 1'000'000;
    --seconds;
  }
  const auto t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(micros));
  return buf;
}

std::optional<std::int64_t> parse_rfc3339(std::string_view text) {
  std::size_t pos = 0;
  const auto year = read_digits(text, pos, 4);
  if (!year || !expect(text, pos, '-')) return std::nullopt;
  const auto month = read_digits(text, pos, 2);
  if (!month || !expect(text, pos, '-')) return std::nullopt;
  const auto day = read_digits(text, pos, 2);
  if (!day || pos >= text.size()) return std::nullopt;
  const char sep = text[pos++];
  if (sep != 'T' && sep != 't' && sep != ' ') return std::nullopt;
  const auto hour = read_digits(text, pos, 2);
  if (!hour || !expect(text, pos, ':')) return std::nullopt;
  const auto minute = read_digits(text, pos, 2);
  if (!minute || !expect(text, pos, ':')) return std::nullopt;
  const auto second = read_digits(text, pos, 2);
  if (!second) return std::nullopt;
  if (*month < 1 || *month > 12 || *day < 1 || *day > days_in_month(*year, *month) || *hour > 23 ||
      *minute > 59 || *second > 60) {
    return std::nullopt;
  }
  std::int64_t micros = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    const auto fraction = read_fraction_us(text, pos);
    if (!fraction) return std::nullopt;
    micros = *fraction;
  }
  const auto offset = read_offset_s(text, pos);
  if (!offset || pos != text.size()) return std::nullopt;
  const std::int64_t days =
      days_from_civil(*year, static_cast<unsigned>(*month), static_cast<unsigned>(*day));
  const std::int64_t seconds = days * 86400 + *hour * 3600 + *minute * 60 + *second - *offset;
  const std::int64_t us = seconds * 1'000'000 + micros;
  if (us < kMinRfc3339Us || us > kMaxRfc3339Us) return std::nullopt;
  return us;
}

std::string record_json(const Record& record) {
  // Topics are validated to [A-Za-z0-9._-], so they need no escaping.
  std::string out;
  out.reserve(record.data.size() + record.topic.size() + 80);
  out += "{\"id\":";
  out += std::to_string(record.id);
  out += ",\"topic\":\"";
  out += record.topic;
  out += "\",\"time\":\"";
  out += format_rfc3339(record.time_us);
  out += "\",\"data\":";
  out += record.data;
  out += '}';
  return out;
}

}  // namespace evstream
