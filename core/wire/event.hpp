#pragma once
// The event record {id, topic, time, data} and its validation rules (SPEC "Data model").
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace evstream {

using EventId = std::int64_t;

inline constexpr std::string_view kDefaultTopic = "events";
inline constexpr std::size_t kMaxTopicLength = 128;
inline constexpr std::size_t kMaxKeyBytes = 256;

// A stored event. `data` is the compact JSON text of the published object exactly as received
// (insignificant whitespace removed, number digits and escapes untouched).
struct Record {
  EventId id = 0;
  std::string topic;
  std::int64_t time_us = 0;  // server acceptance time, microseconds since the Unix epoch (UTC)
  std::string data;
};

// 1-128 characters of [A-Za-z0-9._-].
bool is_valid_topic(std::string_view topic);

// Why a topic is invalid, as one user-facing sentence; empty when valid.
std::string topic_error(std::string_view topic);

// Microseconds since the Unix epoch, from the system clock.
std::int64_t now_unix_us();

// The instants RFC 3339 can write in UTC (four-digit years): 0000-01-01T00:00:00Z to
// 9999-12-31T23:59:59.999999Z, in microseconds since the Unix epoch.
inline constexpr std::int64_t kMinRfc3339Us = -62'167'219'200'000'000;
inline constexpr std::int64_t kMaxRfc3339Us = 253'402'300'799'999'999;

// "2026-11-25T17:01:12.123456Z" (always six fractional digits, always UTC); for instants from
// kMinRfc3339Us to kMaxRfc3339Us, which parse_rfc3339 reads back.
std::string format_rfc3339(std::int64_t unix_us);

// Parses RFC 3339 date-times with any fraction (0-9 digits) and a Z or +hh:mm/-hh:mm offset;
// also accepts a space or lowercase t/z. Returns nullopt when the text is not such a time, or
// when its UTC instant falls outside kMinRfc3339Us..kMaxRfc3339Us ("0000-01-01T00:00:00+01:00",
// "9999-12-31T23:59:60Z"), which could not be written back.
std::optional<std::int64_t> parse_rfc3339(std::string_view text);

// The record as served by REST and tail: {"id":..,"topic":..,"time":..,"data":..}.
std::string record_json(const Record& record);

}  // namespace evstream
