#include "core/client/raw_ws_client.hpp"

#include <libwebsockets.h>

#include <array>
#include <exception>

#include "core/wire/ws_client_frame.hpp"

namespace evstream {

namespace {

// lws' own client gives the server this long to answer the upgrade (its timeout_secs default).
constexpr int kUpgradeTimeoutS = 20;
// How long the server has to answer our close frame, or to close the socket after answering its.
constexpr int kCloseTimeoutS = 5;
// What we send are pongs and a close frame, and the server reads them at once; more than this
// pending means the server stopped reading.
constexpr std::size_t kMaxQueuedBytes = 64 * 1024;

}  // namespace

RawWsConnection::RawWsConnection(ClientLoop& loop, RawWsHandler& handler)
    : m_loop(loop), m_handler(handler), m_out(LWS_PRE, '\0') {}

RawWsConnection::~RawWsConnection() {
  if (m_wsi != nullptr) {
    // Detach: lws may still deliver callbacks for this wsi while the context goes down.
    lws_set_wsi_user(m_wsi, nullptr);
    lws_set_timeout(m_wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
  }
}

void RawWsConnection::connect(const WsUrl& url) {
  m_phase = Phase::connecting;
  if (url.tls) {
    // lws 4.1 starts TLS on a RAW client connection before its socket has connected, which fails.
    on_socket_closed("a raw connection cannot use TLS: " + url.to_string());
    return;
  }
  m_reader = WsFrameReader();
  m_out.resize(LWS_PRE);
  m_close_sent = m_hang_up_after_write = m_refused_auth = false;
  m_reason.clear();
  std::array<unsigned char, 16> nonce{};
  lws_get_random(m_loop.context(), nonce.data(), nonce.size());
  const std::string key = websocket_key(nonce);
  m_response.emplace(websocket_accept(key));
  m_request = upgrade_request(
      {url.host, url.port, url.tls, url.path, key, "evstream-loadtest/" EVSTREAM_VERSION});

  lws_client_connect_info info{};
  info.context = m_loop.context();
  info.address = url.host.c_str();
  info.port = url.port;
  info.path = "";
  info.host = url.host.c_str();
  info.origin = url.host.c_str();
  info.method = "RAW";  // lws connects and hands us the bytes; the HTTP upgrade is ours
  info.local_protocol_name = "evstream-client";
  info.userdata = this;
  info.pwsi = &m_wsi;
  if (lws_client_connect_via_info(&info) == nullptr) {
    // lws may have reported the failure through CLIENT_CONNECTION_ERROR already.
    on_socket_closed("cannot connect to " + url.to_string());
  }
}

void RawWsConnection::send_text(std::string_view text) {
  if (m_phase == Phase::open) queue_frame(WsOpcode::text, text);
}

void RawWsConnection::close(std::uint16_t code) {
  if (m_wsi == nullptr) return;
  if (m_phase == Phase::open) {
    queue_close(code);
    m_phase = Phase::closing;
  } else if (m_phase == Phase::connecting || m_phase == Phase::upgrading) {
    m_reason = "closed";
    lws_set_timeout(m_wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
  }
}

int RawWsConnection::on_event(lws* wsi, int reason, void* in, std::size_t len) {
  try {
    switch (reason) {
      case LWS_CALLBACK_RAW_CONNECTED:
        return on_connected(wsi);
      case LWS_CALLBACK_RAW_RX:
        return on_receive({static_cast<const char*>(in), len});
      case LWS_CALLBACK_RAW_WRITEABLE:
        return on_writeable();
      case LWS_CALLBACK_RAW_CLOSE:
        on_socket_closed(!m_reason.empty()             ? m_reason
                         : m_close_sent                ? "closed"
                         : m_phase == Phase::upgrading ? "connection closed during the upgrade"
                                                       : "connection lost");
        return 0;
      case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        on_socket_closed(in != nullptr ? static_cast<const char*>(in) : "connection failed");
        return 0;
      default:
        return 0;
    }
  } catch (const std::exception& e) {
    // Nothing may throw through lws: this one connection ends, with the reason.
    m_reason = std::string("internal error: ") + e.what();
    return -1;
  }
}

int RawWsConnection::on_connected(lws* wsi) {
  if (m_phase != Phase::connecting) return 0;
  m_wsi = wsi;
  m_phase = Phase::upgrading;
  m_out += m_request;
  m_request = {};
  lws_set_timeout(wsi, PENDING_TIMEOUT_AWAITING_SERVER_RESPONSE, kUpgradeTimeoutS);
  lws_callback_on_writable(wsi);
  return 0;
}

int RawWsConnection::on_receive(std::string_view bytes) {
  if (m_phase == Phase::upgrading) {
    bytes.remove_prefix(m_response->feed(bytes));
    switch (m_response->state()) {
      case WsUpgradeResponse::State::incomplete:
        return 0;
      case WsUpgradeResponse::State::refused:
        m_refused_auth = m_response->status() == 401;
        m_reason = m_refused_auth ? "the server refused the token (HTTP 401): pass the right "
                                    "--token or set EVSTREAM_TOKEN"
                                  : "upgrade refused: " + m_response->error();
        return -1;
      case WsUpgradeResponse::State::accepted:
        m_response.reset();
        m_phase = Phase::open;
        lws_set_timeout(m_wsi, NO_PENDING_TIMEOUT, 0);
        m_handler.on_open(*this);
        break;  // the rest of the read is frames already
    }
  }
  const int result = on_frames(bytes);
  m_handler.on_read_end(*this);
  return result;
}

int RawWsConnection::on_frames(std::string_view bytes) {
  m_reader.feed(bytes);
  while (auto event = m_reader.next()) {
    switch (event->kind) {
      case WsFrameEvent::Kind::message:
        // What comes after our close frame is not delivered: the owner is done with it.
        if (m_phase == Phase::open) m_handler.on_message(*this, event->payload);
        break;
      case WsFrameEvent::Kind::ping:
        if (!m_close_sent) queue_frame(WsOpcode::pong, event->payload);
        break;
      case WsFrameEvent::Kind::pong:
        break;  // we send no pings: an unsolicited pong is a heartbeat to ignore (RFC 6455 §5.5.3)
      case WsFrameEvent::Kind::close:
        if (m_close_sent) return -1;  // the answer to ours: the handshake is complete
        m_reason = "server closed the connection (" + std::to_string(event->close_code) +
                   (event->payload.empty() ? "" : " " + std::string(event->payload)) + ")";
        // Echo the code, then let the server close the socket first (RFC 6455 §7.1.1).
        queue_close(event->close_code);
        m_phase = Phase::closing;
        break;
      case WsFrameEvent::Kind::error:
        fail("protocol error: " + std::string(event->error), event->close_code);
        break;
    }
  }
  return 0;
}

// One lws_write per round: everything queued since (the upgrade request, pongs, a close frame)
// goes out together.
int RawWsConnection::on_writeable() {
  const std::size_t size = m_out.size() - LWS_PRE;
  if (size > 0) {
    auto* bytes = reinterpret_cast<unsigned char*>(m_out.data()) + LWS_PRE;
    if (lws_write(m_wsi, bytes, size, LWS_WRITE_RAW) < static_cast<int>(size)) return -1;
    m_out.resize(LWS_PRE);
  }
  return m_hang_up_after_write ? -1 : 0;
}

void RawWsConnection::on_socket_closed(std::string why) {
  m_wsi = nullptr;
  if (m_phase == Phase::closed || m_phase == Phase::idle) return;
  m_phase = Phase::closed;
  m_response.reset();
  m_handler.on_closed(*this, why);
}

void RawWsConnection::queue_frame(WsOpcode opcode, std::string_view payload) {
  if (m_wsi == nullptr || m_close_sent) return;
  if (m_out.size() - LWS_PRE + payload.size() > kMaxQueuedBytes) {
    m_reason = "the server stopped reading";
    lws_set_timeout(m_wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    return;
  }
  // Every client frame is masked with a fresh unpredictable key (RFC 6455 §5.3).
  WsMaskKey key{};
  lws_get_random(m_loop.context(), key.data(), key.size());
  append_client_frame(m_out, opcode, payload, key);
  lws_callback_on_writable(m_wsi);
}

void RawWsConnection::queue_close(std::uint16_t code) {
  queue_frame(WsOpcode::close, close_payload(code));
  m_close_sent = true;
  if (m_wsi != nullptr) lws_set_timeout(m_wsi, PENDING_TIMEOUT_CLOSE_ACK, kCloseTimeoutS);
}

// Failing the connection (RFC 6455 §7.1.7): a close frame with the code, then the socket.
void RawWsConnection::fail(std::string why, std::uint16_t code) {
  m_reason = std::move(why);
  queue_close(code);
  m_phase = Phase::closing;
  m_hang_up_after_write = true;
}

}  // namespace evstream
