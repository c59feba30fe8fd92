// Fuzz target: the REST query and paging model (core/wire/events_query.hpp). The input is a query
// string, a newline, then a page body: GET /api/events parameters arrive at serve from the
// network, and replay's REST source reads page bodies from the network. Invariants: an accepted
// query written back with events_url parses to the same query (paging does not drift), and an
// accepted page written back with events_page_json is valid JSON that parses to the same records.
#include <string>
#include <variant>

#include "core/util/util.hpp"
#include "core/wire/events_query.hpp"
#include "core/wire/json_text.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

using namespace evstream;

constexpr std::int64_t kNowUs = 1'764'090'072'123'456;  // 2025-11-25T17:01:12.123456Z

// "a=1&b=2" as lws hands it over: names and URL-decoded values; nullopt on a bad escape.
std::optional<QueryArgs> split_query(std::string_view query) {
  QueryArgs args;
  while (!query.empty()) {
    const auto [pair, rest] = fuzz::split_once(query, '&');
    const auto [name, value] = fuzz::split_once(pair, '=');
    auto decoded_name = url_decode(name);
    auto decoded_value = url_decode(value);
    if (!decoded_name || !decoded_value) return std::nullopt;
    args.emplace_back(std::move(*decoded_name), std::move(*decoded_value));
    if (rest.data() == nullptr) break;
    query = rest;
  }
  return args;
}

bool same(const Query& a, const Query& b) {
  return a.after == b.after && a.before == b.before && a.since_us == b.since_us &&
         a.until_us == b.until_us && a.topics == b.topics && a.limit == b.limit &&
         a.order == b.order && a.where == b.where &&
         a.filter.clauses.size() == b.filter.clauses.size();
}

bool same(const Record& a, const Record& b) {
  return a.id == b.id && a.topic == b.topic && a.time_us == b.time_us && a.data == b.data;
}

void check_query(std::string_view text) {
  const auto args = split_query(text);
  if (!args) return;
  const auto parsed = parse_events_query(*args, kNowUs);
  const auto* query = std::get_if<Query>(&parsed);
  if (query == nullptr) {
    FUZZ_CHECK(!std::get<std::string>(parsed).empty());
    return;
  }
  FUZZ_CHECK(query->limit >= 1 && query->limit <= kMaxQueryLimit);
  for (const auto& topic : query->topics) FUZZ_CHECK(is_valid_topic(topic));

  const std::string url = events_url(*query);
  FUZZ_CHECK(url.starts_with("/api/events?"));
  const auto url_args = split_query(std::string_view(url).substr(12));
  FUZZ_CHECK(url_args.has_value());
  const auto again = parse_events_query(*url_args, kNowUs);
  FUZZ_CHECK(std::holds_alternative<Query>(again));
  FUZZ_CHECK(same(std::get<Query>(again), *query));

  const Query next = next_page_query(*query, 42);
  FUZZ_CHECK((query->order == Order::desc ? next.before : next.after) == 42);
}

void check_page(std::string_view body) {
  const auto page = parse_events_page(body);
  if (!page) return;
  for (const auto& record : page->records) {
    FUZZ_CHECK(check_json(record.data).kind == JsonKind::object);
  }
  const std::string written = events_page_json(
      page->records, page->more ? std::optional<std::string>("/api/events?x") : std::nullopt);
  FUZZ_CHECK(check_json(written).kind == JsonKind::object);
  const auto again = parse_events_page(written);
  FUZZ_CHECK(again && again->more == page->more && again->records.size() == page->records.size());
  for (std::size_t i = 0; i < page->records.size(); ++i) {
    FUZZ_CHECK(same(again->records[i], page->records[i]));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto [query, body] = evstream::fuzz::split_once(evstream::fuzz::as_text(data, size), '\n');
  check_query(query);
  check_page(body);
  return 0;
}
