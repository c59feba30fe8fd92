#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "core/server/api.hpp"

using namespace evstream;

namespace {
const std::int64_t kNow = 1'795'626'072'000'000;  // 2026-11-25T17:01:12Z

Query query_ok(const QueryArgs& args) {
  auto parsed = parse_events_query(args, kNow);
  REQUIRE(std::holds_alternative<Query>(parsed));
  return std::get<Query>(parsed);
}
std::string query_error(const QueryArgs& args) {
  auto parsed = parse_events_query(args, kNow);
  REQUIRE(std::holds_alternative<std::string>(parsed));
  return std::get<std::string>(parsed);
}
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

TEST_CASE("api::parse_events_query") {
  SUBCASE("defaults: newest first, 100") {
    const Query q = query_ok({});
    CHECK(q.order == Order::desc);
    CHECK(q.limit == 100);
    CHECK_FALSE(q.after);
    CHECK(q.topics.empty());
  }
  SUBCASE("every parameter") {
    const Query q = query_ok({{"after", "5"},
                              {"before", "90"},
                              {"since", "2026-11-25T17:00:00Z"},
                              {"until", "2026-11-25T18:00:00.5+01:00"},
                              {"topic", "cams"},
                              {"topic", "doors"},
                              {"topic", "cams"},
                              {"limit", "20"},
                              {"order", "asc"},
                              {"token", "ignored"}});
    CHECK(*q.after == 5);
    CHECK(*q.before == 90);
    CHECK(*q.since_us == kNow - 72'000'000);
    CHECK(*q.until_us == kNow - 72'000'000 + 500'000);
    CHECK(q.topics == std::vector<std::string>{"cams", "doors"});
    CHECK(q.limit == 20);
    CHECK(q.order == Order::asc);
  }
  SUBCASE("durations ago, and an offset whose + became a space") {
    CHECK(*query_ok({{"since", "1h"}}).since_us == kNow - 3'600'000'000);
    CHECK(*query_ok({{"until", "90s"}}).until_us == kNow - 90'000'000);
    CHECK(*query_ok({{"since", "2026-11-25T18:01:12 01:00"}}).since_us == kNow);
  }
  SUBCASE("limit above the maximum is capped") {
    CHECK(query_ok({{"limit", "5000"}}).limit == kMaxQueryLimit);
  }
  SUBCASE("errors name the parameter") {
    CHECK(query_error({{"limit", "0"}}) == "bad limit=0: expected a whole number from 1 to 1000");
    CHECK(query_error({{"limit", "ten"}}).starts_with("bad limit=ten"));
    CHECK(query_error({{"after", "-1"}}).starts_with("bad after=-1: expected an event id"));
    CHECK(query_error({{"before", "1.5"}}).starts_with("bad before=1.5"));
    CHECK(
        query_error({{"since", "yesterday"}}).starts_with("bad since=yesterday: expected an RFC"));
    CHECK(query_error({{"until", "12"}}).ends_with("; for event ids use before="));
    CHECK(query_error({{"order", "up"}}) == "bad order=up: expected asc or desc");
    CHECK(query_error({{"topic", "a b"}}).starts_with("bad topic=a b: "));
    CHECK(query_error({{"topics", "x"}}).starts_with("unknown parameter \"topics\""));
  }
}

TEST_CASE("api::paging") {
  Query q = query_ok({{"topic", "cams"}, {"limit", "2"}, {"since", "1h"}, {"after", "3"}});
  SUBCASE("desc moves before=, keeping the other bounds") {
    const Query next = next_page_query(q, 40);
    CHECK(*next.before == 40);
    CHECK(*next.after == 3);
    CHECK(events_url(next) ==
          "/api/events?after=3&before=40&since=2026-11-25T16%3A01%3A12.000000Z&topic=cams&limit=2"
          "&order=desc");
  }
  SUBCASE("asc moves after=") {
    q.order = Order::asc;
    const Query next = next_page_query(q, 40);
    CHECK(*next.after == 40);
    CHECK_FALSE(next.before);
  }
  SUBCASE("the URL parses back to the same query") {
    const Query back = query_ok({{"after", "3"},
                                 {"since", "2026-11-25T16:01:12.000000Z"},
                                 {"topic", "cams"},
                                 {"limit", "2"},
                                 {"order", "desc"}});
    CHECK(events_url(back) == events_url(q));
  }
}

TEST_CASE("api::events_page_json") {
  std::vector<Record> records{{2, "cams", kNow, R"({"n":1.10})"}, {1, "events", kNow, "{}"}};
  CHECK(
      events_page_json(records, std::nullopt) ==
      R"({"events":[{"id":2,"topic":"cams","time":"2026-11-25T17:01:12.000000Z","data":{"n":1.10}},)"
      R"({"id":1,"topic":"events","time":"2026-11-25T17:01:12.000000Z","data":{}}],"next":null})");
  CHECK(events_page_json({}, "/api/events?before=1") ==
        R"({"events":[],"next":"/api/events?before=1"})");
}

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
