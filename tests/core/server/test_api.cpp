#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "core/server/api.hpp"

using namespace evstream;

namespace {
std::vector<PublishRequest> body_ok(std::string_view body, bool ndjson, std::string_view key = {}) {
  auto decoded = decode_publish_body(body, ndjson, key, 1024);
  REQUIRE(std::holds_alternative<std::vector<PublishRequest>>(decoded));
  return std::get<std::vector<PublishRequest>>(decoded);
}
std::string body_error(std::string_view body, bool ndjson, std::string_view key = {}) {
  auto decoded = decode_publish_body(body, ndjson, key, 1024);
  REQUIRE(std::holds_alternative<std::string>(decoded));
  return std::get<std::string>(decoded);
}
}  // namespace

TEST_CASE("api::parse_event_id") {
  CHECK(*parse_event_id("42") == 42);
  CHECK_FALSE(parse_event_id("0"));
  CHECK_FALSE(parse_event_id("-1"));
  CHECK_FALSE(parse_event_id("4x"));
  CHECK_FALSE(parse_event_id(""));
  CHECK_FALSE(parse_event_id("99999999999999999999"));
}

TEST_CASE("api::decode_publish_body") {
  SUBCASE("single object, envelope and header key") {
    auto events = body_ok(R"({"camera_id": "c1", "n": 1.10})", false, "k1");
    REQUIRE(events.size() == 1);
    CHECK(events[0].data == R"({"camera_id":"c1","n":1.10})");
    CHECK(events[0].topic == "events");
    CHECK(*events[0].key == "k1");
    events = body_ok(R"({"type":"event","topic":"t","key":"own","data":{"a":1}})", false, "k1");
    CHECK(events[0].topic == "t");
    CHECK(*events[0].key == "own");
  }
  SUBCASE("single object errors") {
    CHECK(body_error("  ", false) == "empty body: send one JSON object");
    CHECK(body_error("[1]", false) == "an event must be a JSON object, not an array");
    CHECK(body_error("{}", false, std::string(300, 'k')).find("longer than 256") !=
          std::string::npos);
  }
  SUBCASE("NDJSON: lines, blanks, CRLF and derived keys") {
    auto events = body_ok(
        "{\"a\":1}\r\n\n{\"type\":\"event\",\"topic\":\"x\",\"data\":{\"b\":2}}\n", true, "batch7");
    REQUIRE(events.size() == 2);
    CHECK(events[0].data == R"({"a":1})");
    CHECK(*events[0].key == "batch7:1");
    CHECK(events[1].topic == "x");
    CHECK(*events[1].key == "batch7:3");
    CHECK_FALSE(body_ok("{\"a\":1}", true)[0].key);
  }
  SUBCASE("NDJSON: the first bad line is named, nothing is returned") {
    CHECK(body_error("{\"a\":1}\n{\"b\":2}\n[3]\n{bad\n", true) ==
          "line 3: an event must be a JSON object, not an array");
    CHECK(body_error("{\"a\":1}\n{\"type\":\"event\",\"topic\":\"no space\",\"data\":{}}", true)
              .starts_with("line 2: "));
    CHECK(body_error("\n\n", true) == "empty body: send one JSON object per line");
    CHECK(body_error("{\"a\":\"" + std::string(2000, 'x') + "\"}", true) ==
          "line 1: larger than 1024 bytes");
  }
  SUBCASE("content type") {
    CHECK(is_ndjson("application/x-ndjson"));
    CHECK(is_ndjson("Application/X-NDJSON; charset=utf-8"));
    CHECK_FALSE(is_ndjson("application/json"));
    CHECK_FALSE(is_ndjson(""));
  }
}

TEST_CASE("api::tokens") {
  CHECK(bearer_token("Bearer abc") == "abc");
  CHECK(bearer_token("bearer   abc ") == "abc");
  CHECK(bearer_token("Basic abc") == "");
  CHECK(bearer_token("Bearer") == "");
  CHECK(bearer_token("Bearerabc") == "");
  CHECK(tokens_equal("secret", "secret"));
  CHECK_FALSE(tokens_equal("secreT", "secret"));
  CHECK_FALSE(tokens_equal("secret1", "secret"));
  CHECK_FALSE(tokens_equal("secre", "secret"));
  CHECK_FALSE(tokens_equal("", ""));  // an unset token is never "presented"
}

TEST_CASE("api::openapi_json") {
  const auto doc = nlohmann::json::parse(openapi_json(), nullptr, false);
  REQUIRE_FALSE(doc.is_discarded());
  CHECK(doc["openapi"] == "3.1.0");
  for (const char* path : {"/api/events", "/api/events/{id}", "/api/health", "/api/openapi.json",
                           "/metrics", "/", "/ws/events", "/ws/publish"}) {
    CHECK_MESSAGE(doc["paths"].contains(path), path);
  }
  for (const char* schema : {"Ping", "Pong", "EventMessage", "ErrorMessage", "Ack", "PublishFrame",
                             "Record", "EventPage", "Health"}) {
    CHECK_MESSAGE(doc["components"]["schemas"].contains(schema), schema);
  }
  // Every $ref points at something that exists.
  std::vector<std::string> refs;
  auto walk = [&](auto& self, const nlohmann::json& node) -> void {
    if (node.is_object()) {
      for (auto it = node.begin(); it != node.end(); ++it) {
        if (it.key() == "$ref") refs.push_back(it.value().get<std::string>());
        self(self, it.value());
      }
    } else if (node.is_array()) {
      for (const auto& item : node) self(self, item);
    }
  };
  walk(walk, doc);
  CHECK(refs.size() > 20);
  for (const auto& ref : refs) {
    REQUIRE(ref.starts_with("#/"));
    CHECK_MESSAGE(doc.contains(nlohmann::json::json_pointer(ref.substr(1))), ref);
  }
}

TEST_CASE("api::dashboard asset") {
  const std::string_view page(kDashboardHtml, kDashboardHtmlSize);
  CHECK(page.starts_with("<!doctype html>"));
  CHECK(kDashboardHtml[kDashboardHtmlSize] == '\0');
}
