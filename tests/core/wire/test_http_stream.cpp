#include <doctest/doctest.h>

#include "core/wire/http_stream.hpp"
#include "core/wire/protocol.hpp"

using namespace evstream;

namespace {

std::string framed(StreamFormat format, std::string_view message) {
  std::string out;
  append_stream_message(out, format, message);
  return out;
}

Record sample_record(EventId id) {
  Record record;
  record.id = id;
  record.topic = "events";
  record.time_us = 1'764'000'000'000'000;
  record.data = R"({"camera_id":"cam-1","n":12345678901234567890123})";
  return record;
}

}  // namespace

TEST_CASE("http_stream::choose_stream_format") {
  CHECK(choose_stream_format(std::nullopt, "") == StreamFormat::ndjson);
  CHECK(choose_stream_format(std::nullopt, "*/*") == StreamFormat::ndjson);
  CHECK(choose_stream_format(std::nullopt, "text/event-stream") == StreamFormat::sse);
  CHECK(choose_stream_format(std::nullopt, "text/html, text/event-stream;q=0.9") ==
        StreamFormat::sse);
  CHECK(choose_stream_format("sse", "") == StreamFormat::sse);
  CHECK(choose_stream_format("ndjson", "text/event-stream") == StreamFormat::ndjson);
  CHECK_FALSE(choose_stream_format("json", ""));
  CHECK_FALSE(choose_stream_format("", ""));
}

TEST_CASE("http_stream::append_stream_message") {
  const std::string event = encode_event(sample_record(42));
  SUBCASE("NDJSON: each message on its own line, as the WebSocket sends it") {
    CHECK(framed(StreamFormat::ndjson, event) == event + "\n");
    CHECK(framed(StreamFormat::ndjson, encode_ping(0)) == encode_ping(0) + "\n");
    CHECK(framed(StreamFormat::ndjson, "{\"a\":\n1}") == "{\"a\": 1}\n");
  }
  SUBCASE("SSE: an event carries its id, so a reconnect resumes after it") {
    CHECK(framed(StreamFormat::sse, event) == "id: 42\ndata: " + event + "\n\n");
    CHECK(framed(StreamFormat::sse, encode_event(sample_record(9'007'199'254'740'993))) ==
          "id: 9007199254740993\ndata: " + encode_event(sample_record(9'007'199'254'740'993)) +
              "\n\n");
  }
  SUBCASE("SSE: the greeting is a typed ping with the retry delay; later pings are comments") {
    const std::string hello = encode_ping(0, "7", 41);
    CHECK(framed(StreamFormat::sse, hello) == "retry: 1000\nevent: ping\ndata: " + hello + "\n\n");
    CHECK(framed(StreamFormat::sse, encode_ping(0)) == ": ping\n\n");
  }
  SUBCASE("SSE: errors are plain messages without an id (Last-Event-ID stays the event's)") {
    const std::string error = encode_error("since=9 is above the newest stored id 3");
    CHECK(framed(StreamFormat::sse, error) == "data: " + error + "\n\n");
  }
  SUBCASE("SSE: a raw line break never splits a field") {
    CHECK(framed(StreamFormat::sse, "{\"type\":\"error\",\r\n\"message\":\"x\"}") ==
          "data: {\"type\":\"error\",  \"message\":\"x\"}\n\n");
  }
}

TEST_CASE("http_stream::append_stream_end") {
  std::string out;
  append_stream_end(out, StreamFormat::ndjson, "slow consumer");
  CHECK(out == encode_error("slow consumer") + "\n");
  out.clear();
  append_stream_end(out, StreamFormat::sse, "slow consumer:\nresume");
  CHECK(out == ": slow consumer: resume\n\n");
}
