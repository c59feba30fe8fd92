// POST /api/events bodies, the id of /api/events/{id} and the token helpers. The contract is in
// api.hpp.
#include <algorithm>
#include <cctype>
#include <charconv>

#include "core/server/api.hpp"

namespace evstream {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

// Gives an event without its own key the one derived from the Idempotency-Key header.
std::string apply_key(PublishRequest& request, std::string key) {
  if (request.key || key.empty()) return {};
  if (key.size() > kMaxKeyBytes) {
    return "the Idempotency-Key header makes a key longer than " + std::to_string(kMaxKeyBytes) +
           " bytes";
  }
  request.key = std::move(key);
  return {};
}

}  // namespace

bool is_ndjson(std::string_view content_type) {
  return iequals(trim(content_type.substr(0, content_type.find(';'))), "application/x-ndjson");
}

std::variant<std::vector<PublishRequest>, std::string> decode_publish_body(
    std::string_view body, bool ndjson, std::string_view idempotency_key,
    std::size_t max_event_bytes) {
  std::vector<PublishRequest> events;
  if (!ndjson) {
    if (trim(body).empty()) return std::string("empty body: send one JSON object");
    auto decoded = decode_publish(body);
    if (auto* error = std::get_if<std::string>(&decoded)) return std::move(*error);
    events.push_back(std::get<PublishRequest>(std::move(decoded)));
    if (auto error = apply_key(events.back(), std::string(idempotency_key)); !error.empty()) {
      return error;
    }
    return events;
  }
  std::size_t line_number = 0;
  while (!body.empty()) {
    const auto newline = body.find('\n');
    const std::string_view line = body.substr(0, newline);
    body.remove_prefix(newline == std::string_view::npos ? body.size() : newline + 1);
    ++line_number;
    if (trim(line).empty()) continue;
    const std::string where = "line " + std::to_string(line_number) + ": ";
    if (line.size() > max_event_bytes) {
      return where + "larger than " + std::to_string(max_event_bytes) + " bytes";
    }
    if (events.size() == kMaxNdjsonEvents) {
      return where + "more than " + std::to_string(kMaxNdjsonEvents) +
             " events in one request; split the body";
    }
    auto decoded = decode_publish(line);
    if (auto* error = std::get_if<std::string>(&decoded)) return where + *error;
    events.push_back(std::get<PublishRequest>(std::move(decoded)));
    if (!idempotency_key.empty()) {
      auto key = std::string(idempotency_key) + ":" + std::to_string(line_number);
      if (auto error = apply_key(events.back(), std::move(key)); !error.empty()) {
        return where + error;
      }
    }
  }
  if (events.empty()) return std::string("empty body: send one JSON object per line");
  return events;
}

std::string_view bearer_token(std::string_view authorization) {
  authorization = trim(authorization);
  constexpr std::string_view kScheme = "bearer";
  if (authorization.size() <= kScheme.size() ||
      !iequals(authorization.substr(0, kScheme.size()), kScheme) ||
      (authorization[kScheme.size()] != ' ' && authorization[kScheme.size()] != '\t')) {
    return {};
  }
  return trim(authorization.substr(kScheme.size()));
}

bool tokens_equal(std::string_view presented, std::string_view expected) {
  // Every byte of `expected` is visited whatever `presented` holds; volatile keeps the compiler
  // from turning the loop into an early-exit comparison.
  volatile unsigned char diff = presented.size() == expected.size() ? 0 : 1;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const auto given = i < presented.size() ? static_cast<unsigned char>(presented[i]) : 0;
    diff = diff | (given ^ static_cast<unsigned char>(expected[i]));
  }
  return diff == 0 && !expected.empty();
}

std::optional<EventId> parse_event_id(std::string_view text) {
  if (text.empty() || text.size() > 19 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  EventId id = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || end != text.data() + text.size() || id < 1) return std::nullopt;
  return id;
}

}  // namespace evstream
