#include <doctest/doctest.h>

#include "core/wire/protocol.hpp"

using namespace evstream;

namespace {
PublishRequest publish_ok(std::string_view text) {
  auto decoded = decode_publish(text);
  REQUIRE(std::holds_alternative<PublishRequest>(decoded));
  return std::get<PublishRequest>(decoded);
}
std::string publish_error(std::string_view text) {
  auto decoded = decode_publish(text);
  REQUIRE(std::holds_alternative<std::string>(decoded));
  return std::get<std::string>(decoded);
}
std::string subscriber_error(std::string_view text) {
  auto decoded = decode_subscriber_message(text);
  REQUIRE(std::holds_alternative<std::string>(decoded));
  return std::get<std::string>(decoded);
}
}  // namespace

TEST_CASE("protocol::encode") {
  const std::int64_t t = 1'795'626'072'123'456;
  SUBCASE("ping, first and periodic") {
    CHECK(
        encode_ping(t, "7", 42) ==
        R"({"type":"ping","timestamp":"2026-11-25T17:01:12.123456Z","connection_id":"7","last_id":42})");
    CHECK(encode_ping(t) == R"({"type":"ping","timestamp":"2026-11-25T17:01:12.123456Z"})");
  }
  SUBCASE("event keeps the data bytes") {
    Record record{42, "cams", t,
                  R"({"n":123456789012345678901234567890,"f":1.10,"e":"\ud83d\ude00"})"};
    CHECK(
        encode_event(record) ==
        R"({"type":"event","id":42,"topic":"cams","time":"2026-11-25T17:01:12.123456Z","data":{"n":123456789012345678901234567890,"f":1.10,"e":"\ud83d\ude00"}})");
  }
  SUBCASE("error escapes the message") {
    CHECK(encode_error("bad \"x\"\n") == R"({"type":"error","message":"bad \"x\"\n"})");
  }
  SUBCASE("ack with and without duplicate") {
    CHECK(encode_ack(42, false) == R"({"type":"ack","id":42})");
    CHECK(encode_ack(7, true) == R"({"type":"ack","id":7,"duplicate":true})");
  }
}

TEST_CASE("protocol::decode_subscriber_message") {
  SUBCASE("a pong is accepted, with or without timestamp") {
    CHECK(std::holds_alternative<SubscriberPong>(
        decode_subscriber_message(R"({"type":"pong","timestamp":"2026-11-25T17:01:12Z"})")));
    CHECK(
        std::holds_alternative<SubscriberPong>(decode_subscriber_message(R"( {"type":"pong"} )")));
  }
  SUBCASE("anything else gets a precise error") {
    CHECK(subscriber_error("{bad").rfind("invalid JSON: parse error at line 1, column 2", 0) == 0);
    CHECK(subscriber_error("[1]").rfind("a message must be a JSON object, not an array", 0) == 0);
    CHECK(subscriber_error(R"("x")").find("not a string") != std::string::npos);
    CHECK(subscriber_error(R"({"a":1})").rfind(R"(message has no string "type" field)", 0) == 0);
    CHECK(subscriber_error(R"({"type":"subscribe"})")
              .rfind(R"(unknown message type "subscribe")", 0) == 0);
    CHECK(subscriber_error(R"({"type":"pong"})"
                           "x")
              .find("invalid JSON") == 0);
  }
}

TEST_CASE("protocol::decode_publish") {
  SUBCASE("a bare object is the data, minified, digits kept") {
    const auto request = publish_ok(
        "{ \"camera_id\" : \"cam-1\", \"n\": 123456789012345678901234567890,"
        " \"c\": 0.950, \"deep\": [[[{\"x\": \"\\u00e9 \xf0\x9f\x98\x80\"}]]] }");
    CHECK(request.topic == "events");
    CHECK_FALSE(request.key);
    CHECK(request.data ==
          "{\"camera_id\":\"cam-1\",\"n\":123456789012345678901234567890,\"c\":0.950,"
          "\"deep\":[[[{\"x\":\"\\u00e9 \xf0\x9f\x98\x80\"}]]]}");
  }
  SUBCASE("the envelope gives topic, key and data") {
    const auto request =
        publish_ok(R"({"type":"event","topic":"cams.front","key":"k-1","data":{"a":1}})");
    CHECK(request.topic == "cams.front");
    CHECK(request.key == "k-1");
    CHECK(request.data == R"({"a":1})");
  }
  SUBCASE("an object with another type field is plain data") {
    const auto request = publish_ok(R"({"type":"person","confidence":0.9})");
    CHECK(request.data == R"({"type":"person","confidence":0.9})");
  }
  SUBCASE("rejections say what was wrong") {
    CHECK(publish_error("{\"a\":").rfind("invalid JSON: parse error at line 1, column 6", 0) == 0);
    CHECK(publish_error("42") == "an event must be a JSON object, not a number");
    CHECK(publish_error(R"({"type":"event","data":[1]})") == R"("data" must be a JSON object)");
    CHECK(publish_error(R"({"type":"event","data":{},"topic":"a b"})").find("invalid character") !=
          std::string::npos);
    CHECK(publish_error(R"({"type":"event","data":{},"topic":7})") ==
          R"("topic" must be a string)");
    CHECK(publish_error(R"({"type":"event","data":{},"key":""})") ==
          R"("key" must be 1-256 bytes long)");
    CHECK(publish_error(R"({"type":"event","data":{},"key":")" + std::string(257, 'k') + "\"}") ==
          R"("key" must be 1-256 bytes long)");
    CHECK(publish_error(R"({"type":"event","data":{},"topc":"x"})") ==
          R"(unknown field "topc" in the event envelope (expected type, data, topic, key))");
  }
}

TEST_CASE("protocol::decode_server_message") {
  SUBCASE("event") {
    const std::string text =
        encode_event(Record{9, "t", 1'795'626'072'123'456, R"({"a":[1,2],"b":"}"})"});
    const auto message = decode_server_message(text);
    REQUIRE(message);
    CHECK(message->type == ServerMessage::Type::event);
    CHECK(message->id == 9);
    CHECK(message->topic == "t");
    CHECK(message->time == "2026-11-25T17:01:12.123456Z");
    CHECK(message->data == R"({"a":[1,2],"b":"}"})");
  }
  SUBCASE("first ping, ack, error, unknown") {
    auto ping = decode_server_message(encode_ping(0, "c1", 5));
    REQUIRE(ping);
    CHECK(ping->type == ServerMessage::Type::ping);
    CHECK(ping->last_id == 5);
    CHECK(ping->connection_id == "c1");
    auto ack = decode_server_message(encode_ack(3, true));
    REQUIRE(ack);
    CHECK(ack->type == ServerMessage::Type::ack);
    CHECK(ack->id == 3);
    CHECK(ack->duplicate);
    auto error = decode_server_message(encode_error("nope"));
    REQUIRE(error);
    CHECK(error->message == "nope");
    CHECK(decode_server_message(R"({"type":"other"})")->type == ServerMessage::Type::unknown);
    CHECK_FALSE(decode_server_message("not json"));
    CHECK_FALSE(decode_server_message(R"({"type":"ack"})"));
  }
  SUBCASE("a truncated or invalid frame is not a message (found by make fuzz)") {
    CHECK_FALSE(decode_server_message(R"({"a)"));
    CHECK_FALSE(decode_server_message(R"({"type")"));
    CHECK_FALSE(decode_server_message(R"({"type":"ack","id":1)"));
    CHECK_FALSE(decode_server_message(R"({"type":"ack","id":1}x)"));
  }
}
