// Where replay reads from: a database file or GET /api/events, page by page in id order.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <limits>

#include "core/client/replay.hpp"
#include "core/client/ws_client.hpp"
#include "core/wire/events_query.hpp"
#include "core/wire/json_text.hpp"

namespace evstream {

namespace {

// A page of 1000 large events is a few MB; allow a slow link to deliver it.
constexpr std::int64_t kRequestTimeoutUs = 30'000'000;

std::optional<std::int64_t> parse_integer(std::string_view text) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// The "error" of an error body, or the start of the body when it has none.
std::string error_message(const std::string& body) {
  if (check_json(body).ok) {
    const std::string compact = minify_json(body);
    for (const auto& member : top_level_members(compact)) {
      if (member.key != "error") continue;
      if (auto message = decode_json_string(member.value)) return *message;
    }
  }
  return body.substr(0, 200);
}

}  // namespace

std::optional<ReplayBound> parse_replay_bound(std::string_view text, std::int64_t now_us) {
  if (!text.empty() &&
      std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    const auto id = parse_integer(text);
    if (!id) return std::nullopt;  // beyond 64 bits
    return ReplayBound{EventId{*id}};
  }
  if (const auto time = parse_rfc3339(text)) return ReplayBound{ReplayTime{*time}};
  // A unit is required: "1.5" would be ambiguous (seconds ago? an id?).
  if (text.empty() || !std::isalpha(static_cast<unsigned char>(text.back()))) return std::nullopt;
  try {
    // Clamped as GET /api/events does, so the REST source can still write it as a time.
    return ReplayBound{ReplayTime{std::max(now_us - parse_duration_us(text), kMinRfc3339Us)}};
  } catch (const Error&) {
    return std::nullopt;
  }
}

Query replay_query(const ReplayFilter& filter, EventId last_id, int page_size) {
  Query query;
  query.after = filter.after;
  EventId newest = last_id;
  if (filter.until_id) newest = std::min(newest, *filter.until_id);
  query.before = newest < std::numeric_limits<EventId>::max() ? newest + 1 : newest;
  query.since_us = filter.since_us;
  query.until_us = filter.until_us;
  query.topics = filter.topics;
  query.limit = std::clamp(page_size, 1, kMaxQueryLimit);
  query.order = Order::asc;
  return query;
}

// --- StoreSource

StoreSource::StoreSource(const std::string& path, ReplayFilter filter, int page_size)
    : m_store(path, Store::Mode::read_only), m_filter(std::move(filter)), m_page_size(page_size) {}

bool StoreSource::next_page(std::vector<Record>& page) {
  page.clear();
  if (m_done) return false;
  if (!m_query) m_query = replay_query(m_filter, m_store.last_id(), m_page_size);
  page = m_store.query(*m_query);
  // A short page is the last one: the snapshot bound (before=) means nothing can follow.
  if (page.size() < static_cast<std::size_t>(m_query->limit)) m_done = true;
  if (page.empty()) return false;
  m_query->after = page.back().id;
  return true;
}

// --- RestSource

RestSource::RestSource(std::vector<WsUrl> servers, ReplayFilter filter, std::string read_token,
                       int page_size)
    : m_loop(std::make_unique<ClientLoop>(4)),
      m_servers(std::move(servers)),
      m_filter(std::move(filter)),
      m_token(std::move(read_token)),
      m_page_size(page_size) {}

RestSource::~RestSource() = default;

void RestSource::interrupt() {
  m_loop->stop();
}

std::optional<std::string> RestSource::get(const std::string& path) {
  std::string request = path;
  if (!m_token.empty()) request += "&token=" + url_encode(m_token);
  HttpGet::Response response;
  // Only an unreachable server moves the request on: an HTTP error is the answer of a live one.
  for (std::size_t tried = 1;; ++tried) {
    response = http_get(*m_loop, server(), request, kRequestTimeoutUs);
    if (m_loop->stopping()) return std::nullopt;
    if (response.status != 0) break;
    if (tried == m_servers.size()) {
      std::string where;
      for (const WsUrl& url : m_servers) where += (where.empty() ? "" : ", ") + http_base(url);
      throw SourceUnreachable("cannot reach " + where + ": " + response.error +
                              " (is `evstream serve` running there?)");
    }
    const std::string left = http_base(server());
    m_current = (m_current + 1) % m_servers.size();
    std::fprintf(stderr, "evstream replay: %s: %s; failing over to %s\n", left.c_str(),
                 response.error.c_str(), http_base(server()).c_str());
  }
  const std::string where = http_base(server());
  if (response.status != 200) {
    std::string hint;
    if (response.status == 401 || response.status == 403) hint = " (give --read-token)";
    throw Error(where + " answered HTTP " + std::to_string(response.status) + " to GET " + path +
                ": " + error_message(response.body) + hint);
  }
  return std::move(response.body);
}

bool RestSource::next_page(std::vector<Record>& page) {
  page.clear();
  if (m_done) return false;
  if (!m_query) {
    // The newest id now bounds the replay, as StoreSource does with last_id().
    const auto body = get("/api/events?order=desc&limit=1");
    if (!body) return false;
    const auto newest = parse_events_page(*body);
    if (!newest) throw Error(http_base(server()) + " sent an unexpected /api/events page");
    if (newest->records.empty()) {
      m_done = true;
      return false;
    }
    m_query = replay_query(m_filter, newest->records.front().id, m_page_size);
  }
  const std::string path = events_url(*m_query);
  const auto body = get(path);
  if (!body) return false;
  auto parsed = parse_events_page(*body);
  if (!parsed) throw Error(http_base(server()) + " sent an unexpected page for GET " + path);
  page = std::move(parsed->records);
  if (!parsed->more || page.empty()) m_done = true;
  if (page.empty()) return false;
  m_query->after = page.back().id;
  return true;
}

}  // namespace evstream
