#include <doctest/doctest.h>

#include <string>

#include "core/wire/ws_client_frame.hpp"
#include "core/wire/ws_frame_reader.hpp"

using namespace evstream;

namespace {

struct Decoded {
  unsigned char first = 0;
  bool masked = false;
  WsMaskKey key{};
  std::string payload;  // unmasked
};

// What a server does with a client frame (RFC 6455 §5.3): read the header, unmask the payload.
Decoded decode_client_frame(std::string_view bytes) {
  Decoded out;
  out.first = static_cast<unsigned char>(bytes[0]);
  const auto second = static_cast<unsigned char>(bytes[1]);
  out.masked = (second & 0x80) != 0;
  std::uint64_t n = second & 0x7F;
  std::size_t at = 2;
  if (n == 126 || n == 127) {
    const std::size_t width = n == 126 ? 2 : 8;
    n = 0;
    for (std::size_t i = 0; i < width; ++i) n = (n << 8) | static_cast<unsigned char>(bytes[at++]);
  }
  for (auto& k : out.key) k = static_cast<unsigned char>(bytes[at++]);
  REQUIRE(bytes.size() == at + n);
  for (std::size_t i = 0; i < n; ++i) {
    out.payload += static_cast<char>(static_cast<unsigned char>(bytes[at + i]) ^ out.key[i % 4]);
  }
  return out;
}

}  // namespace

TEST_CASE("ws_client_frame::append_client_frame") {
  const WsMaskKey key{0x37, 0xfa, 0x21, 0x3d};

  SUBCASE("RFC 6455 §5.7: a masked \"Hello\"") {
    std::string out;
    append_client_frame(out, WsOpcode::text, "Hello", key);
    CHECK(out == std::string("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11));
  }

  SUBCASE("round trip through a server's unmasking, at every length encoding") {
    for (const std::size_t size : {0, 3, 125, 126, 65535, 65536}) {
      CAPTURE(size);
      std::string payload(size, '\0');
      for (std::size_t i = 0; i < size; ++i) payload[i] = static_cast<char>(i * 7);
      std::string out = "prefix";  // appends, keeping what is queued already
      append_client_frame(out, WsOpcode::binary, payload, key);
      CHECK(out.starts_with("prefix"));
      const Decoded frame = decode_client_frame(std::string_view(out).substr(6));
      CHECK(frame.first == 0x82);
      CHECK(frame.masked);
      CHECK(frame.key == key);
      CHECK(frame.payload == payload);
      if (size >= 4) CHECK(out.substr(out.size() - size) != payload);  // really masked
    }
  }

  SUBCASE("pong and close frames, which a server-frame reader refuses as masked") {
    std::string out;
    append_client_frame(out, WsOpcode::pong, "ping payload", key);
    append_client_frame(out, WsOpcode::close, close_payload(1000), key);
    const Decoded pong = decode_client_frame(std::string_view(out).substr(0, 2 + 4 + 12));
    CHECK(pong.first == 0x8A);
    CHECK(pong.payload == "ping payload");
    const Decoded close = decode_client_frame(std::string_view(out).substr(18));
    CHECK(close.first == 0x88);
    CHECK(close.payload == std::string("\x03\xe8", 2));
    WsFrameReader reader;
    reader.feed(out);
    const auto event = reader.next();
    REQUIRE(event);
    CHECK(event->error == "masked frame from the server");
  }
}

TEST_CASE("ws_client_frame::close_payload") {
  CHECK(close_payload(1000) == std::string("\x03\xe8", 2));
  CHECK(close_payload(1002, "protocol error") == std::string("\x03\xea", 2) + "protocol error");
  CHECK(close_payload(1005, "never sent").empty());
  CHECK(close_payload(4000, std::string(200, 'r')).size() == 125);
}
