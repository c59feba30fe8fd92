#pragma once
// The client side of the WebSocket opening handshake (RFC 6455 §4.1), for connections whose bytes
// we handle ourselves (loadtest's raw subscribers): the upgrade request, and a reader for the
// server's response that checks the 101, the upgrade headers and Sec-WebSocket-Accept.
#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace evstream {

// The Sec-WebSocket-Key for 16 random bytes (their base64).
std::string websocket_key(const std::array<unsigned char, 16>& nonce);
// What the server must answer in Sec-WebSocket-Accept for `key`: base64(SHA-1(key + the GUID)).
std::string websocket_accept(std::string_view key);

struct WsUpgradeRequest {
  std::string host;  // as in WsUrl: no brackets for IPv6
  int port = 0;
  bool tls = false;  // decides which port is the default one, left out of Host
  std::string path;  // with the query
  std::string key;   // websocket_key()
  std::string user_agent;
};
// The GET request text, ending with the blank line. No Sec-WebSocket-Protocol (the server routes
// an upgrade without one to its default protocol, as it does for lws' client), no extensions,
// and no Origin: this is not a browser, and a server with --allow-origin admits such clients.
std::string upgrade_request(const WsUpgradeRequest& request);

// Reads the server's response to upgrade_request(), which may arrive split over any reads.
class WsUpgradeResponse {
 public:
  enum class State { incomplete, accepted, refused };
  // The longest response head taken; longer is refused.
  static constexpr std::size_t kMaxHead = 16 * 1024;
  explicit WsUpgradeResponse(std::string expected_accept)
      : m_expected_accept(std::move(expected_accept)) {}

  // Takes bytes up to the end of the response head and returns how many it took: once the state
  // is accepted, the rest of `bytes` is the first WebSocket frame data.
  std::size_t feed(std::string_view bytes);
  State state() const { return m_state; }
  int status() const { return m_status; }  // 0 until the status line was read
  // Why it was refused: "HTTP 401 Unauthorized", "no Sec-WebSocket-Accept", ...
  const std::string& error() const { return m_error; }

 private:
  void check_head();
  void refuse(std::string why);
  std::string m_expected_accept;
  std::string m_head;
  State m_state = State::incomplete;
  int m_status = 0;
  std::string m_error;
};

}  // namespace evstream
