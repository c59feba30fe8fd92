#include "core/wire/ws_handshake.hpp"

#include <openssl/sha.h>

#include <algorithm>
#include <charconv>

namespace evstream {

namespace {

constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";  // RFC 6455 §1.3

std::string base64(const unsigned char* data, std::size_t size) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  for (std::size_t i = 0; i < size; i += 3) {
    const std::size_t left = size - i;
    const unsigned triple = (unsigned{data[i]} << 16) |
                            (left > 1 ? unsigned{data[i + 1]} << 8 : 0) |
                            (left > 2 ? unsigned{data[i + 2]} : 0);
    out += kAlphabet[(triple >> 18) & 0x3F];
    out += kAlphabet[(triple >> 12) & 0x3F];
    out += left > 1 ? kAlphabet[(triple >> 6) & 0x3F] : '=';
    out += left > 2 ? kAlphabet[triple & 0x3F] : '=';
  }
  return out;
}

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return lower(x) == lower(y); });
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// "keep-alive, Upgrade" holds the token "upgrade" (header values are comma-separated lists).
bool has_token(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    const auto comma = list.find(',');
    if (equals_ignoring_case(trim(list.substr(0, comma)), token)) return true;
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
  }
  return false;
}

}  // namespace

std::string websocket_key(const std::array<unsigned char, 16>& nonce) {
  return base64(nonce.data(), nonce.size());
}

std::string websocket_accept(std::string_view key) {
  std::string text(key);
  text += kGuid;
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  return base64(digest, sizeof digest);
}

std::string upgrade_request(const WsUpgradeRequest& request) {
  std::string host =
      request.host.find(':') != std::string::npos ? "[" + request.host + "]" : request.host;
  if (request.port != (request.tls ? 443 : 80)) host += ":" + std::to_string(request.port);
  std::string text =
      "GET " + request.path + " HTTP/1.1\r\nHost: " + host +
      "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + request.key +
      "\r\nSec-WebSocket-Version: 13\r\n";
  if (!request.user_agent.empty()) text += "User-Agent: " + request.user_agent + "\r\n";
  text += "\r\n";
  return text;
}

std::size_t WsUpgradeResponse::feed(std::string_view bytes) {
  if (m_state != State::incomplete) return 0;
  const std::size_t before = m_head.size();
  m_head.append(bytes.substr(0, kMaxHead - before));
  // The blank line may straddle reads: look from 3 bytes back, never over the whole head again.
  const auto end = m_head.find("\r\n\r\n", before >= 3 ? before - 3 : 0);
  if (end == std::string::npos) {
    if (m_head.size() >= kMaxHead) refuse("response head over 16 KiB");
    return m_head.size() - before;
  }
  m_head.resize(end + 4);
  check_head();
  return m_head.size() - before;
}

void WsUpgradeResponse::check_head() {
  std::string_view head(m_head);
  const auto line_end = head.find("\r\n");
  const std::string_view status_line = head.substr(0, line_end);
  head.remove_prefix(line_end + 2);
  // "HTTP/1.1 101 Switching Protocols"
  if (!status_line.starts_with("HTTP/1.") || status_line.size() < 12 || status_line[8] != ' ') {
    return refuse("not an HTTP response");
  }
  const auto status = status_line.substr(9, 3);
  if (std::from_chars(status.data(), status.data() + status.size(), m_status).ec != std::errc{}) {
    return refuse("not an HTTP response");
  }
  if (m_status != 101) return refuse("HTTP " + std::string(trim(status_line.substr(9))));
  bool upgrade = false;
  bool connection = false;
  std::string_view accept;
  while (!head.empty()) {
    const auto eol = head.find("\r\n");
    const std::string_view line = head.substr(0, eol);
    head.remove_prefix(eol + 2);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;  // the blank line, or junk we need not read
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim(line.substr(colon + 1));
    if (equals_ignoring_case(name, "upgrade")) {
      upgrade = equals_ignoring_case(value, "websocket");
    } else if (equals_ignoring_case(name, "connection")) {
      connection = has_token(value, "upgrade");
    } else if (equals_ignoring_case(name, "sec-websocket-accept")) {
      accept = value;
    } else if (equals_ignoring_case(name, "sec-websocket-extensions") ||
               equals_ignoring_case(name, "sec-websocket-protocol")) {
      // We offered none: RFC 6455 §4.1 says a client must fail the connection then.
      return refuse("the server chose " + std::string(name) + " " + std::string(value) +
                    " that was not offered");
    }
  }
  if (!upgrade) return refuse("no Upgrade: websocket in the 101 response");
  if (!connection) return refuse("no Connection: Upgrade in the 101 response");
  if (accept.empty()) return refuse("no Sec-WebSocket-Accept in the 101 response");
  if (accept != m_expected_accept) return refuse("wrong Sec-WebSocket-Accept");
  m_state = State::accepted;
}

void WsUpgradeResponse::refuse(std::string why) {
  m_state = State::refused;
  m_error = std::move(why);
}

}  // namespace evstream
