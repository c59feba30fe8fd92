#include <doctest/doctest.h>

#include "core/wire/event.hpp"

using namespace evstream;

TEST_CASE("event::is_valid_topic") {
  SUBCASE("accepts 1-128 characters of [A-Za-z0-9._-]") {
    CHECK(is_valid_topic("events"));
    CHECK(is_valid_topic("cam-1.front_door"));
    CHECK(is_valid_topic("a"));
    CHECK(is_valid_topic(std::string(128, 'x')));
  }
  SUBCASE("rejects empty, too long and other characters with a reason") {
    CHECK_FALSE(is_valid_topic(""));
    CHECK_FALSE(is_valid_topic(std::string(129, 'x')));
    CHECK_FALSE(is_valid_topic("a b"));
    CHECK_FALSE(is_valid_topic("a/b"));
    CHECK_FALSE(is_valid_topic("caf\xc3\xa9"));
    CHECK(topic_error("").find("empty") != std::string::npos);
    CHECK(topic_error(std::string(129, 'x')).find("129 characters") != std::string::npos);
    CHECK(topic_error("a b").find("invalid character") != std::string::npos);
    CHECK(topic_error("ok").empty());
  }
}

TEST_CASE("event::format_rfc3339") {
  CHECK(format_rfc3339(0) == "1970-01-01T00:00:00.000000Z");
  CHECK(format_rfc3339(1'795'626'072'123'456) == "2026-11-25T17:01:12.123456Z");
  CHECK(format_rfc3339(951'782'400'000'001) == "2000-02-29T00:00:00.000001Z");
  CHECK(format_rfc3339(-1) == "1969-12-31T23:59:59.999999Z");
}

TEST_CASE("event::parse_rfc3339") {
  SUBCASE("round-trips what format_rfc3339 writes") {
    for (std::int64_t us : {std::int64_t{0}, std::int64_t{1'795'626'072'123'456},
                            std::int64_t{951'782'400'000'001}, now_unix_us()}) {
      CHECK(parse_rfc3339(format_rfc3339(us)) == us);
    }
  }
  SUBCASE("accepts any fraction length, offsets and lowercase separators") {
    CHECK(parse_rfc3339("2026-11-25T17:01:12Z") == 1'795'626'072'000'000);
    CHECK(parse_rfc3339("2026-11-25T17:01:12.1Z") == 1'795'626'072'100'000);
    CHECK(parse_rfc3339("2026-11-25T17:01:12.123456789Z") == 1'795'626'072'123'456);
    CHECK(parse_rfc3339("2026-11-25t17:01:12z") == 1'795'626'072'000'000);
    CHECK(parse_rfc3339("2026-11-25 17:01:12Z") == 1'795'626'072'000'000);
    CHECK(parse_rfc3339("2026-11-25T18:31:12+01:30") == 1'795'626'072'000'000);
    CHECK(parse_rfc3339("2026-11-25T15:01:12-02:00") == 1'795'626'072'000'000);
  }
  SUBCASE("rejects malformed or impossible times") {
    CHECK_FALSE(parse_rfc3339(""));
    CHECK_FALSE(parse_rfc3339("2026-11-25"));
    CHECK_FALSE(parse_rfc3339("2026-11-25T17:01:12"));
    CHECK_FALSE(parse_rfc3339("2026-13-01T00:00:00Z"));
    CHECK_FALSE(parse_rfc3339("2026-02-29T00:00:00Z"));
    CHECK_FALSE(parse_rfc3339("2026-11-25T24:00:00Z"));
    CHECK_FALSE(parse_rfc3339("2026-11-25T17:01:12.Z"));
    CHECK_FALSE(parse_rfc3339("2026-11-25T17:01:12Zjunk"));
    CHECK_FALSE(parse_rfc3339("2026-11-25T17:01:12+1:00"));
    CHECK(parse_rfc3339("2024-02-29T00:00:00Z").has_value());
  }
  SUBCASE("only instants that format_rfc3339 can write back") {
    CHECK(parse_rfc3339("0000-01-01T00:00:00Z") == kMinRfc3339Us);
    CHECK(parse_rfc3339("9999-12-31T23:59:59.999999Z") == kMaxRfc3339Us);
    CHECK(format_rfc3339(kMinRfc3339Us) == "0000-01-01T00:00:00.000000Z");
    CHECK(format_rfc3339(kMaxRfc3339Us) == "9999-12-31T23:59:59.999999Z");
    CHECK_FALSE(parse_rfc3339("0000-01-01T00:00:00+00:01"));  // was year -1: "-001-12-31T..."
    CHECK_FALSE(parse_rfc3339("9999-12-31T23:59:60Z"));       // was year 10000
    CHECK_FALSE(parse_rfc3339("9999-12-31T23:59:59-01:00"));
  }
}

TEST_CASE("event::record_json") {
  Record record{42, "events", 1'795'626'072'123'456, R"({"camera_id":"cam-1","n":1.10})"};
  CHECK(
      record_json(record) ==
      R"({"id":42,"topic":"events","time":"2026-11-25T17:01:12.123456Z","data":{"camera_id":"cam-1","n":1.10}})");
}
