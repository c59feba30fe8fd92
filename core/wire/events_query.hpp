#pragma once
// The REST query and paging model of GET /api/events, shared by both ends: the server parses a
// request into a Query and writes pages (core/server/), the store answers a Query
// (core/store/), and replay's REST source writes the same URLs and reads the pages back
// (core/client/). Pure functions over text; no I/O.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "core/wire/event.hpp"
#include "core/wire/filter.hpp"

namespace evstream {

enum class Order { asc, desc };

// A page holds at most this many records, whatever the request asks for (Store::query and
// GET /api/events both cap to it).
inline constexpr int kMaxQueryLimit = 1000;

// A page request. Every bound is exclusive for ids (after < id < before) and inclusive for times
// (since <= time <= until). An empty `topics` means all topics. `limit` is clamped to
// 1..kMaxQueryLimit.
struct Query {
  std::optional<EventId> after;
  std::optional<EventId> before;
  std::optional<std::int64_t> since_us;
  std::optional<std::int64_t> until_us;
  std::vector<std::string> topics;
  int limit = 100;
  Order order = Order::asc;
  // where= field filters: the expressions as given (next URLs repeat them) and their parse.
  std::vector<std::string> where;
  Filter filter;
};

// Query arguments as lws hands them over: name and URL-decoded value, in request order.
using QueryArgs = std::vector<std::pair<std::string, std::string>>;

// GET /api/events returns this many records unless limit= says otherwise (at most kMaxQueryLimit).
inline constexpr int kDefaultPageLimit = 100;

// Parses after=, before= (ids), since=, until= (RFC 3339, or a duration ago such as 1h, resolved
// against now_us), topic= (repeatable), limit= (1..; above kMaxQueryLimit is capped),
// order=asc|desc (default desc), where= (repeatable field filters) and token= (ignored here: auth
// reads it). Any other name is an error. The error names the parameter: "bad limit=abc: expected
// a whole number from 1 to 1000", or for a filter its position (FilterError::describe).
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

// One page of GET /api/events: its records, and whether `next` said more follow.
struct EventsPage {
  std::vector<Record> records;
  bool more = false;
};
// Parses a page body; nullopt when it is not {"events":[records...],"next":...}.
std::optional<EventsPage> parse_events_page(std::string_view body);

}  // namespace evstream
