// GET /api/events: parameters, paging and the page body. The contract is in events_query.hpp.
#include <algorithm>
#include <cctype>
#include <charconv>

#include "core/util/error.hpp"
#include "core/util/util.hpp"
#include "core/wire/events_query.hpp"
#include "core/wire/json_text.hpp"

namespace evstream {

namespace {

constexpr std::string_view kTimeForms =
    "expected an RFC 3339 time (2026-11-25T17:01:12Z) or a duration ago (30s, 5m, 1h, 7d)";

std::optional<std::int64_t> parse_whole(std::string_view text) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < 0) {
    return std::nullopt;
  }
  return value;
}

std::string bad(std::string_view name, std::string_view value, std::string_view expected) {
  return "bad " + std::string(name) + "=" + std::string(value) + ": " + std::string(expected);
}

// RFC 3339, or a duration ago. A '+' in an unencoded offset reaches us as a space (query decoding
// turns '+' into ' '), so "...T10:00:00 02:00" is read as "+02:00".
std::optional<std::int64_t> parse_time(std::string_view text, std::int64_t now_us) {
  if (auto time = parse_rfc3339(text)) return time;
  if (const auto space = text.rfind(' '); space != std::string_view::npos && space > 10) {
    std::string fixed(text);
    fixed[space] = '+';
    if (auto time = parse_rfc3339(fixed)) return time;
  }
  // A bare number would be ambiguous (seconds ago? a Unix time? an id?), so a unit is required.
  if (text.empty() || !std::isalpha(static_cast<unsigned char>(text.back()))) return std::nullopt;
  try {
    // "since=300000y" means everything: clamped so events_url can still write it as a time.
    return std::max(now_us - parse_duration_us(text), kMinRfc3339Us);
  } catch (const Error&) {
    return std::nullopt;
  }
}

std::optional<std::int64_t> parse_signed(std::string_view text) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// One element of "events": {"id":..,"topic":..,"time":..,"data":{..}} (minified).
std::optional<Record> parse_record(std::string_view text) {
  Record record;
  // One bit per member, so a repeated member cannot stand in for a missing one.
  unsigned seen = 0;
  for (const auto& member : top_level_members(text)) {
    unsigned bit = 0;
    if (member.key == "id") {
      const auto id = parse_signed(member.value);
      if (!id) return std::nullopt;
      record.id = *id;
      bit = 1;
    } else if (member.key == "topic") {
      // record_json writes topics unescaped, so only valid ones may come in.
      auto topic = decode_json_string(member.value);
      if (!topic || !is_valid_topic(*topic)) return std::nullopt;
      record.topic = std::move(*topic);
      bit = 2;
    } else if (member.key == "time") {
      const auto text_time = decode_json_string(member.value);
      const auto time = text_time ? parse_rfc3339(*text_time) : std::nullopt;
      if (!time) return std::nullopt;
      record.time_us = *time;
      bit = 4;
    } else if (member.key == "data") {
      if (!member.value.starts_with('{')) return std::nullopt;
      record.data = std::string(member.value);
      bit = 8;
    }
    seen |= bit;
  }
  if (seen != 15) return std::nullopt;
  return record;
}

}  // namespace

std::variant<Query, std::string> parse_events_query(const QueryArgs& args, std::int64_t now_us) {
  Query query;
  query.limit = kDefaultPageLimit;
  query.order = Order::desc;
  for (const auto& [name, value] : args) {
    if (name == "after" || name == "before") {
      const auto id = parse_whole(value);
      if (!id) return bad(name, value, "expected an event id (a whole number, 0 or more)");
      (name == "after" ? query.after : query.before) = *id;
    } else if (name == "since" || name == "until") {
      const auto time = parse_time(value, now_us);
      if (!time && parse_whole(value)) {
        return bad(name, value,
                   std::string(kTimeForms) + "; for event ids use " +
                       (name == "since" ? "after=" : "before="));
      }
      if (!time) return bad(name, value, kTimeForms);
      (name == "since" ? query.since_us : query.until_us) = *time;
    } else if (name == "topic") {
      if (auto error = topic_error(value); !error.empty()) return bad(name, value, error);
      if (std::find(query.topics.begin(), query.topics.end(), value) == query.topics.end()) {
        query.topics.push_back(value);
      }
    } else if (name == "limit") {
      const auto limit = parse_whole(value);
      if (!limit || *limit < 1) {
        return bad(name, value,
                   "expected a whole number from 1 to " + std::to_string(kMaxQueryLimit));
      }
      query.limit = static_cast<int>(std::min<std::int64_t>(*limit, kMaxQueryLimit));
    } else if (name == "order") {
      if (value != "asc" && value != "desc") return bad(name, value, "expected asc or desc");
      query.order = value == "asc" ? Order::asc : Order::desc;
    } else if (name == "where") {
      auto clause = parse_filter_clause(value);
      if (auto* error = std::get_if<FilterError>(&clause)) return error->describe();
      query.where.push_back(value);
      query.filter.clauses.push_back(std::move(std::get<FilterClause>(clause)));
    } else if (name != "token") {
      return "unknown parameter " + json_quote(name) +
             ": use after, before, since, until, topic, where, limit, order";
    }
  }
  return query;
}

Query next_page_query(const Query& query, EventId last_id) {
  Query next = query;
  if (query.order == Order::desc) {
    next.before = last_id;
  } else {
    next.after = last_id;
  }
  return next;
}

std::string events_url(const Query& query) {
  std::string url = "/api/events?";
  if (query.after) url += "after=" + std::to_string(*query.after) + "&";
  if (query.before) url += "before=" + std::to_string(*query.before) + "&";
  if (query.since_us) url += "since=" + url_encode(format_rfc3339(*query.since_us)) + "&";
  if (query.until_us) url += "until=" + url_encode(format_rfc3339(*query.until_us)) + "&";
  for (const auto& topic : query.topics) url += "topic=" + url_encode(topic) + "&";
  for (const auto& expression : query.where) url += "where=" + url_encode(expression) + "&";
  url += "limit=" + std::to_string(query.limit);
  url += query.order == Order::asc ? "&order=asc" : "&order=desc";
  return url;
}

std::string events_page_json(const std::vector<Record>& records,
                             const std::optional<std::string>& next) {
  std::size_t size = 64;
  for (const auto& record : records) size += record.data.size() + record.topic.size() + 80;
  std::string out;
  out.reserve(size);
  out += "{\"events\":[";
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (i > 0) out += ',';
    out += record_json(records[i]);
  }
  out += "],\"next\":";
  out += next ? json_quote(*next) : "null";
  out += '}';
  return out;
}

std::optional<EventsPage> parse_events_page(std::string_view body) {
  if (!check_json(body).ok) return std::nullopt;
  const std::string compact = minify_json(body);
  std::optional<std::string_view> events;
  std::optional<std::string_view> next;
  for (const auto& member : top_level_members(compact)) {
    if (member.key == "events") events = member.value;
    if (member.key == "next") next = member.value;
  }
  if (!events || !events->starts_with('[') || !next) return std::nullopt;
  EventsPage page;
  for (const auto element : array_elements(*events)) {
    auto record = parse_record(element);
    if (!record) return std::nullopt;
    page.records.push_back(std::move(*record));
  }
  page.more = *next != "null";
  return page;
}

}  // namespace evstream
