// Fuzz target: durations, sizes, RFC 3339 times, topics and event ids (core/util/util.hpp,
// core/wire/event.hpp, core/server/api.hpp). They arrive in flags and environment variables, in
// query parameters (since=1h, until=<time>, topic=) and in REST paths (/api/events/{id}).
// Invariants: what parses formats back to text that parses to the same value.
#include <cstring>
#include <limits>
#include <string>

#include "core/server/api.hpp"
#include "core/util/error.hpp"
#include "core/util/util.hpp"
#include "core/wire/event.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

using namespace evstream;

void check_duration(std::string_view text) {
  std::int64_t us = 0;
  try {
    us = parse_duration_us(text);
  } catch (const Error&) {
    return;
  }
  FUZZ_CHECK(us >= 0);
  const std::string shown = format_duration(us);
  try {
    FUZZ_CHECK(parse_duration_us(shown) == us);
  } catch (const Error&) {
    FUZZ_CHECK(!"format_duration() gave a duration that does not parse");
  }
}

void check_size(std::string_view text) {
  std::uint64_t bytes = 0;
  try {
    bytes = parse_size(text);
  } catch (const Error&) {
    return;
  }
  try {
    FUZZ_CHECK(parse_size(std::to_string(bytes)) == bytes);
    FUZZ_CHECK(parse_size(std::to_string(bytes) + "B") == bytes);
  } catch (const Error&) {
    FUZZ_CHECK(!"a whole number of bytes does not parse");
  }
}

void check_time(std::string_view text) {
  const auto us = parse_rfc3339(text);
  if (!us) return;
  const std::string shown = format_rfc3339(*us);
  FUZZ_CHECK(shown.size() == 27);  // "2026-11-25T17:01:12.123456Z"
  FUZZ_CHECK(parse_rfc3339(shown) == us);
}

void check_topic(std::string_view text) {
  const std::string error = topic_error(text);
  FUZZ_CHECK(is_valid_topic(text) == error.empty());
  if (error.empty()) FUZZ_CHECK(!text.empty() && text.size() <= kMaxTopicLength);
}

void check_event_id(std::string_view text) {
  const auto id = parse_event_id(text);
  if (!id) return;
  FUZZ_CHECK(*id >= 1);
  FUZZ_CHECK(parse_event_id(std::to_string(*id)) == id);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = evstream::fuzz::as_text(data, size);
  check_duration(text);
  check_size(text);
  check_time(text);
  check_topic(text);
  check_event_id(text);
  // Formatting any instant the store can hold must not crash (negative ones included).
  if (size == sizeof(std::int64_t)) {
    std::int64_t us = 0;
    std::memcpy(&us, data, sizeof us);
    (void)format_duration(us);
    (void)format_rfc3339(us);
  }
  return 0;
}
