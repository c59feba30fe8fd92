#include <doctest/doctest.h>

#include <string>

#include "core/wire/ws_handshake.hpp"

using namespace evstream;

namespace {

const std::string kKey = "dGhlIHNhbXBsZSBub25jZQ==";
const std::string kAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

std::string response(const std::string& extra = {}, const std::string& accept = kAccept) {
  return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Accept: " +
         accept + "\r\n" + extra + "\r\n";
}

WsUpgradeResponse read_response(const std::string& bytes) {
  WsUpgradeResponse reader(kAccept);
  reader.feed(bytes);
  return reader;
}

}  // namespace

TEST_CASE("ws_handshake::keys") {
  // RFC 6455 §1.3 and §4.2.2: the nonce "the sample nonce" and its accept value.
  std::array<unsigned char, 16> nonce{};
  const std::string_view sample = "the sample nonce";
  std::copy(sample.begin(), sample.end(), nonce.begin());
  CHECK(websocket_key(nonce) == kKey);
  CHECK(websocket_accept(kKey) == kAccept);
}

TEST_CASE("ws_handshake::upgrade_request") {
  WsUpgradeRequest request{"127.0.0.1",          8000, false, "/ws/events?topic=a&token=t", kKey,
                           "evstream-loadtest/1"};
  CHECK(upgrade_request(request) ==
        "GET /ws/events?topic=a&token=t HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " +
            kKey + "\r\nSec-WebSocket-Version: 13\r\nUser-Agent: evstream-loadtest/1\r\n\r\n");
  SUBCASE("default ports are left out of Host, IPv6 hosts are bracketed") {
    request.port = 80;
    CHECK(upgrade_request(request).find("Host: 127.0.0.1\r\n") != std::string::npos);
    request.tls = true;
    request.port = 443;
    CHECK(upgrade_request(request).find("Host: 127.0.0.1\r\n") != std::string::npos);
    request.host = "::1";
    request.port = 8443;
    CHECK(upgrade_request(request).find("Host: [::1]:8443\r\n") != std::string::npos);
  }
}

TEST_CASE("ws_handshake::WsUpgradeResponse") {
  SUBCASE("101 with the right accept; frame bytes after the head are left to the caller") {
    const std::string head = response();
    const std::string bytes = head + "\x81\x02hi";
    WsUpgradeResponse reader(kAccept);
    CHECK(reader.feed(bytes) == head.size());
    CHECK(reader.state() == WsUpgradeResponse::State::accepted);
    CHECK(reader.status() == 101);
    CHECK(reader.feed("more") == 0);
  }

  SUBCASE("the head split across two reads at every byte") {
    const std::string bytes = response("Server: lws\r\n") + "\x81\x01x";
    const std::size_t head = bytes.size() - 3;
    for (std::size_t cut = 0; cut <= bytes.size(); ++cut) {
      CAPTURE(cut);
      WsUpgradeResponse reader(kAccept);
      std::size_t taken = reader.feed(std::string_view(bytes).substr(0, cut));
      if (reader.state() == WsUpgradeResponse::State::incomplete) {
        CHECK(taken == cut);
        taken += reader.feed(std::string_view(bytes).substr(cut));
      }
      CHECK(reader.state() == WsUpgradeResponse::State::accepted);
      CHECK(taken == head);
    }
  }

  SUBCASE("header names and tokens in any case, Connection as a list") {
    const std::string bytes =
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\nCONNECTION: keep-alive, "
        "upgrade\r\nsec-websocket-accept:  " +
        kAccept + " \r\n\r\n";
    CHECK(read_response(bytes).state() == WsUpgradeResponse::State::accepted);
  }

  SUBCASE("refusals name their reason") {
    const auto refused = [](const std::string& bytes) {
      const auto reader = read_response(bytes);
      CHECK(reader.state() == WsUpgradeResponse::State::refused);
      return reader.error();
    };
    const auto unauthorized =
        read_response("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n");
    CHECK(unauthorized.status() == 401);
    CHECK(unauthorized.error() == "HTTP 401 Unauthorized");
    CHECK(refused("HTTP/1.1 503 \r\n\r\n") == "HTTP 503");
    CHECK(refused(response({}, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=")) == "wrong Sec-WebSocket-Accept");
    CHECK(refused("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n") ==
          "no Sec-WebSocket-Accept in the 101 response");
    CHECK(refused("HTTP/1.1 101 OK\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + kAccept +
                  "\r\n\r\n") == "no Upgrade: websocket in the 101 response");
    CHECK(refused("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: " + kAccept +
                  "\r\n\r\n") == "no Connection: Upgrade in the 101 response");
    CHECK(refused(response("Sec-WebSocket-Protocol: chat\r\n")) ==
          "the server chose Sec-WebSocket-Protocol chat that was not offered");
    CHECK(refused(response("Sec-WebSocket-Extensions: permessage-deflate\r\n"))
              .starts_with("the server chose Sec-WebSocket-Extensions"));
    CHECK(refused("SSH-2.0-OpenSSH\r\n\r\n") == "not an HTTP response");
  }

  SUBCASE("a head that never ends is refused at the limit") {
    WsUpgradeResponse reader(kAccept);
    const std::string junk(WsUpgradeResponse::kMaxHead / 4, 'j');
    std::size_t taken = 0;
    for (int i = 0; i < 5 && reader.state() == WsUpgradeResponse::State::incomplete; ++i) {
      taken += reader.feed(junk);
    }
    CHECK(reader.state() == WsUpgradeResponse::State::refused);
    CHECK(taken == WsUpgradeResponse::kMaxHead);
    CHECK(reader.error() == "response head over 16 KiB");
  }
}
