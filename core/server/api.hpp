#pragma once
// The REST API of serve as pure functions: query parsing and paging for GET /api/events, body
// decoding for POST /api/events, token checks, the OpenAPI document and the embedded dashboard.
// Nothing here touches sockets or the store; http.cpp and api_routes.cpp call these on the
// service thread.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "core/store/store.hpp"
#include "core/wire/event.hpp"
#include "core/wire/protocol.hpp"

namespace evstream {

// Query arguments as lws hands them over: name and URL-decoded value, in request order.
using QueryArgs = std::vector<std::pair<std::string, std::string>>;

// GET /api/events returns this many records unless limit= says otherwise (at most kMaxQueryLimit).
inline constexpr int kDefaultPageLimit = 100;

// Parses after=, before= (ids), since=, until= (RFC 3339, or a duration ago such as 1h, resolved
// against now_us), topic= (repeatable), limit= (1..; above kMaxQueryLimit is capped),
// order=asc|desc (default desc) and token= (ignored here: auth reads it). Any other name is an
// error. The error names the parameter: "bad limit=abc: expected a whole number from 1 to 1000".
std::variant<Query, std::string> parse_events_query(const QueryArgs& args, std::int64_t now_us);

// The query for the page after one whose last record had `last_id`: the same filters, moved past
// that id in the query's order. Following it page by page visits every match exactly once.
Query next_page_query(const Query& query, EventId last_id);

// The relative URL that fetches `query`, e.g. "/api/events?before=42&limit=100&order=desc".
// Times are written as absolute RFC 3339 so a "since=1h" does not drift while paging. Tokens are
// never written into it.
std::string events_url(const Query& query);

// {"events":[record,...],"next":"<url>"} or ...,"next":null} when nothing follows.
std::string events_page_json(const std::vector<Record>& records,
                             const std::optional<std::string>& next);

// The id in /api/events/{id}: digits only, at least 1.
std::optional<EventId> parse_event_id(std::string_view text);

// POST /api/events takes one JSON object, or with Content-Type application/x-ndjson one object per
// line. An NDJSON body may be this many times --max-message-bytes (each line is still held to
// --max-message-bytes) and hold at most kMaxNdjsonEvents events.
inline constexpr std::size_t kNdjsonBodyFactor = 16;
inline constexpr std::size_t kMaxNdjsonEvents = 10000;

// True for "application/x-ndjson" (any case, parameters such as "; charset=utf-8" ignored).
bool is_ndjson(std::string_view content_type);

// Decodes a POST body into events, all or nothing: the first bad line (or the single object's
// problem) gives the error, "line 3: invalid JSON: ...". Blank lines are skipped. When an
// Idempotency-Key header was given, an event without its own "key" takes it (NDJSON: "KEY:LINE",
// so re-posting the same batch with the same header stores nothing twice).
std::variant<std::vector<PublishRequest>, std::string> decode_publish_body(
    std::string_view body, bool ndjson, std::string_view idempotency_key,
    std::size_t max_event_bytes);

// The token in "Bearer T" (scheme case-insensitive); empty when the header is anything else.
std::string_view bearer_token(std::string_view authorization);

// Compares a presented token with the configured one in time that depends only on the configured
// token's length, so response timing does not reveal how much of a guess was right.
bool tokens_equal(std::string_view presented, std::string_view expected);

// The OpenAPI 3.1 document served at /api/openapi.json (valid JSON, checked by the unit tests).
std::string_view openapi_json();

// The dashboard page served at "/", embedded at build time from core/server/assets/dashboard.html
// by cmake/embed.cmake (the array is NUL-terminated; the size excludes the NUL).
extern const char kDashboardHtml[];
extern const std::size_t kDashboardHtmlSize;

}  // namespace evstream
