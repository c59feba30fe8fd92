// Fuzz target: what POST /api/events takes from the network (core/server/api.hpp). The input is
// three header lines (Content-Type, Idempotency-Key, Authorization) and the body. Invariants: an
// accepted body is all or nothing, every event's data is a compact JSON object, keys are 1-256
// bytes, the Idempotency-Key reaches every event that has no key of its own; a bearer token is a
// trimmed part of the header and compares equal only to itself.
#include <string>
#include <variant>

#include "core/server/api.hpp"
#include "core/wire/json_text.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

using namespace evstream;

constexpr std::size_t kMaxEventBytes = 512;  // small, so "line N: larger than" is reached

void check_body(std::string_view body, bool ndjson, std::string_view key) {
  const auto decoded = decode_publish_body(body, ndjson, key, kMaxEventBytes);
  const auto* events = std::get_if<std::vector<PublishRequest>>(&decoded);
  if (events == nullptr) {
    FUZZ_CHECK(!std::get<std::string>(decoded).empty());
    return;
  }
  FUZZ_CHECK(!events->empty());
  FUZZ_CHECK(ndjson ? events->size() <= kMaxNdjsonEvents : events->size() == 1);
  for (const auto& event : *events) {
    const JsonCheck data = check_json(event.data);
    FUZZ_CHECK(data.ok && data.kind == JsonKind::object);
    FUZZ_CHECK(minify_json(event.data) == event.data);
    FUZZ_CHECK(is_valid_topic(event.topic));
    FUZZ_CHECK(!event.key || (!event.key->empty() && event.key->size() <= kMaxKeyBytes));
    if (!key.empty()) FUZZ_CHECK(event.key.has_value());
    if (ndjson) FUZZ_CHECK(event.data.size() <= kMaxEventBytes);
  }
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

void check_authorization(std::string_view header) {
  const std::string_view token = bearer_token(header);
  if (token.empty()) {
    FUZZ_CHECK(!tokens_equal(token, token));
    return;
  }
  FUZZ_CHECK(token.data() >= header.data() &&
             token.data() + token.size() <= header.data() + header.size());
  FUZZ_CHECK(!is_space(token.front()) && !is_space(token.back()));
  FUZZ_CHECK(tokens_equal(token, token));
  FUZZ_CHECK(tokens_equal(token, "s3cret") == (token == "s3cret"));
  FUZZ_CHECK(tokens_equal(header, token) == (header == token));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using evstream::fuzz::split_once;
  const auto [content_type, rest1] = split_once(evstream::fuzz::as_text(data, size), '\n');
  const auto [key, rest2] = split_once(rest1, '\n');
  const auto [authorization, body] = split_once(rest2, '\n');
  const bool ndjson = evstream::is_ndjson(content_type);
  check_body(body, ndjson, key);
  check_body(body, !ndjson, key);
  check_authorization(authorization);
  return 0;
}
