#pragma once
// The REST API of serve as pure functions: body decoding for POST /api/events, token checks, the
// OpenAPI document and the embedded dashboard (the GET /api/events query and paging model, which
// replay's REST source shares, is core/wire/events_query.hpp).
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
#include "core/wire/events_query.hpp"
#include "core/wire/protocol.hpp"

namespace evstream {

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
