#include <doctest/doctest.h>

#include <ostream>
#include <string>
#include <vector>

#include "core/wire/ws_frame_reader.hpp"

using namespace evstream;

namespace {

// A server frame with any header bits, for building good and bad input.
std::string frame(unsigned char first, std::string_view payload, bool masked = false) {
  std::string out(1, static_cast<char>(first));
  const unsigned char mask_bit = masked ? 0x80 : 0;
  const std::uint64_t n = payload.size();
  if (n < 126) {
    out += static_cast<char>(mask_bit | n);
  } else if (n <= 0xFFFF) {
    out += static_cast<char>(mask_bit | 126);
    out += static_cast<char>(n >> 8);
    out += static_cast<char>(n & 0xFF);
  } else {
    out += static_cast<char>(mask_bit | 127);
    for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>((n >> shift) & 0xFF);
  }
  if (masked) out += std::string(4, '\0');
  return out + std::string(payload);
}

std::string text(std::string_view payload) {
  return frame(0x81, payload);
}

// An event with its views copied, so it outlives the reader's buffers.
struct Seen {
  WsFrameEvent::Kind kind;
  bool binary;
  std::string payload;
  std::uint16_t code;
  std::string error;
  bool operator==(const Seen&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Seen& s) {
  return os << "{kind " << static_cast<int>(s.kind) << " binary " << s.binary << " payload "
            << s.payload.size() << "B '" << s.payload.substr(0, 20) << "' code " << s.code
            << " error '" << s.error << "'}";
}

void drain(WsFrameReader& reader, std::vector<Seen>& seen) {
  while (auto event = reader.next()) {
    seen.push_back({event->kind, event->binary, std::string(event->payload), event->close_code,
                    std::string(event->error)});
  }
}

// Feeds `stream` in pieces cut at `cuts` (ascending offsets).
std::vector<Seen> read_cut(std::string_view stream, const std::vector<std::size_t>& cuts,
                           std::size_t max_message = WsFrameReader::kDefaultMaxMessage) {
  WsFrameReader reader(max_message);
  std::vector<Seen> seen;
  std::size_t at = 0;
  for (const std::size_t cut : cuts) {
    reader.feed(stream.substr(at, cut - at));
    drain(reader, seen);
    at = cut;
  }
  reader.feed(stream.substr(at));
  drain(reader, seen);
  return seen;
}

std::vector<Seen> read_all(std::string_view stream,
                           std::size_t max_message = WsFrameReader::kDefaultMaxMessage) {
  return read_cut(stream, {}, max_message);
}

Seen message(std::string payload, bool binary = false) {
  return {WsFrameEvent::Kind::message, binary, std::move(payload), 0, {}};
}
Seen control(WsFrameEvent::Kind kind, std::string payload, std::uint16_t code = 0) {
  return {kind, false, std::move(payload), code, {}};
}
Seen error(std::uint16_t code, std::string why) {
  return {WsFrameEvent::Kind::error, false, {}, code, std::move(why)};
}

// Text split in three fragments with a ping and a pong between them, then more frames.
std::string mixed_stream() {
  return text("first") + frame(0x01, "hel") + frame(0x89, "are you there") + frame(0x00, "lo ") +
         frame(0x8A, "") + frame(0x80, "world") + frame(0x82, std::string("\x00\xff", 2)) +
         text(std::string(300, 'm')) +
         frame(0x88,
               "\x03\xe8"
               "bye");
}

std::vector<Seen> mixed_expected() {
  return {message("first"),
          control(WsFrameEvent::Kind::ping, "are you there"),
          control(WsFrameEvent::Kind::pong, ""),
          message("hello world"),
          message(std::string("\x00\xff", 2), true),
          message(std::string(300, 'm')),
          control(WsFrameEvent::Kind::close, "bye", 1000)};
}

}  // namespace

TEST_CASE("ws_frame_reader::WsFrameReader") {
  SUBCASE("a message that arrived whole is a view of the bytes read, not a copy") {
    const std::string stream = text("one") + text("two");
    WsFrameReader reader;
    reader.feed(stream);
    auto first = reader.next();
    REQUIRE(first);
    CHECK(first->payload == "one");
    CHECK(first->payload.data() == stream.data() + 2);
    auto second = reader.next();
    REQUIRE(second);
    CHECK(second->payload.data() == stream.data() + 7);
    CHECK_FALSE(reader.next());
    CHECK(reader.buffered() == 0);
  }

  SUBCASE("7-, 16- and 64-bit lengths at their edges") {
    for (const std::size_t size : {0, 1, 125, 126, 127, 65535, 65536, 70000}) {
      CAPTURE(size);
      const std::string payload(size, 'a');
      const std::string bytes = text(payload);
      CHECK(bytes.size() == size + (size < 126 ? 2 : size <= 0xFFFF ? 4 : 10));
      CHECK(read_all(bytes) == std::vector<Seen>{message(payload)});
    }
  }

  SUBCASE("the same events whatever the stream is cut into two reads") {
    const std::string stream = mixed_stream();
    for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
      CAPTURE(cut);
      REQUIRE(read_cut(stream, {cut}) == mixed_expected());
    }
  }

  SUBCASE("the same events when every byte is a read of its own") {
    const std::string stream = mixed_stream();
    std::vector<std::size_t> cuts;
    for (std::size_t i = 1; i < stream.size(); ++i) cuts.push_back(i);
    CHECK(read_cut(stream, cuts) == mixed_expected());
  }

  SUBCASE("16- and 64-bit headers cut at every byte, one byte per read") {
    const std::string big(70000, 'b');
    const std::string stream = text(std::string(300, 's')) + text(big) + text("end");
    std::vector<std::size_t> cuts;
    for (std::size_t i = 1; i < stream.size(); ++i) cuts.push_back(i);
    CHECK(read_cut(stream, cuts) ==
          std::vector<Seen>{message(std::string(300, 's')), message(big), message("end")});
  }

  SUBCASE("a frame spanning reads is held once: no more than its own bytes, released after") {
    const std::string big(70000, 'c');
    const std::string stream = text(big) + text("next");
    WsFrameReader reader;
    std::vector<Seen> seen;
    for (std::size_t at = 0; at < stream.size(); at += 1000) {
      reader.feed(std::string_view(stream).substr(at, 1000));
      drain(reader, seen);
      if (seen.empty()) CHECK(reader.buffered() == std::min(at + 1000, stream.size()));
    }
    CHECK(seen == std::vector<Seen>{message(big), message("next")});
    CHECK(reader.buffered() == 0);
  }

  SUBCASE("fragments: text and binary, control frames between them") {
    const std::string stream = frame(0x02, "ab") + frame(0x89, "p1") + frame(0x00, "cd") +
                               frame(0x89, "p2") + frame(0x80, "ef") + text("after");
    CHECK(read_all(stream) == std::vector<Seen>{control(WsFrameEvent::Kind::ping, "p1"),
                                                control(WsFrameEvent::Kind::ping, "p2"),
                                                message("abcdef", true), message("after")});
  }

  SUBCASE("close: code and reason, none, and nothing read after it") {
    CHECK(read_all(frame(0x88,
                         "\x0f\xa0"
                         "shutting down") +
                   text("ignored")) ==
          std::vector<Seen>{control(WsFrameEvent::Kind::close, "shutting down", 4000)});
    CHECK(read_all(frame(0x88, "")) ==
          std::vector<Seen>{control(WsFrameEvent::Kind::close, "", 1005)});
    WsFrameReader reader;
    const std::string stream = frame(0x88, "\x03\xe8");
    reader.feed(stream);
    CHECK(reader.next());
    CHECK(reader.done());
    const std::string more = text("late");
    reader.feed(more);
    CHECK_FALSE(reader.next());
  }

  SUBCASE("protocol errors, reported once as soon as the header shows them") {
    const auto first_error = [](const std::string& stream, std::size_t max = 1 << 20) {
      const auto seen = read_all(stream, max);
      REQUIRE_FALSE(seen.empty());
      return seen.back();
    };
    CHECK(first_error(frame(0x81, "x", true)) == error(1002, "masked frame from the server"));
    CHECK(first_error(frame(0xC1, "x")) == error(1002, "reserved bits set in a frame"));
    CHECK(first_error(frame(0x91, "x")) == error(1002, "reserved bits set in a frame"));
    CHECK(first_error(frame(0x83, "x")) == error(1002, "frame with an undefined opcode"));
    CHECK(first_error(frame(0x8B, "x")) == error(1002, "frame with an undefined opcode"));
    CHECK(first_error(frame(0x89, std::string(126, 'p'))) ==
          error(1002, "control frame over 125 bytes"));
    CHECK(first_error(frame(0x09, "p")) == error(1002, "fragmented control frame"));
    CHECK(first_error(frame(0x88, "\x03")) == error(1002, "close frame with a 1-byte payload"));
    CHECK(first_error(frame(0x80, "x")) ==
          error(1002, "continuation frame without a message to continue"));
    CHECK(first_error(frame(0x01, "a") + text("b")) ==
          error(1002, "new message before the fragmented one ended"));
    CHECK(first_error(std::string("\x81\x7f\x80\0\0\0\0\0\0\0", 10)) ==
          error(1002, "64-bit length with the top bit set"));
    CHECK(first_error(text(std::string(101, 'x')), 100) == error(1009, "message too big"));
    // Too big counts every fragment, and is refused on the header, before the payload comes.
    CHECK(first_error(frame(0x01, std::string(60, 'x')) + frame(0x80, std::string(60, 'y')), 100) ==
          error(1009, "message too big"));
    CHECK(first_error(std::string("\x81\x7f\0\0\0\x01\0\0\0\0", 10)) ==
          error(1009, "message too big"));
  }

  SUBCASE("after an error the reader stays done") {
    WsFrameReader reader;
    const std::string bad = frame(0x81, "x", true);
    reader.feed(bad);
    auto event = reader.next();
    REQUIRE(event);
    CHECK(event->kind == WsFrameEvent::Kind::error);
    CHECK(reader.done());
    CHECK_FALSE(reader.next());
    const std::string good = text("fine");
    reader.feed(good);
    CHECK_FALSE(reader.next());
  }
}
