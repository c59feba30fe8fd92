#pragma once
// A WebSocket client connection whose bytes lws hands over raw: a "RAW" method client on a
// ClientLoop, so lws still connects and runs the event loop, while the upgrade handshake and the
// frames are ours (wire/ws_handshake, wire/ws_frame_reader). Messages arrive in bulk, as views of
// what was read, instead of through lws' WebSocket client, which walks every payload byte through
// a state machine (warmcat/libwebsockets#3394). For receivers that must cost less than the server
// they measure: loadtest's subscribers. ws:// only (lws 4.1 cannot run a raw client over TLS;
// WsConnection serves wss://). Loop thread only.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/client/ws_client.hpp"
#include "core/wire/ws_frame_reader.hpp"
#include "core/wire/ws_handshake.hpp"

namespace evstream {

class RawWsConnection;

class RawWsHandler {
 public:
  virtual ~RawWsHandler() = default;
  virtual void on_open(RawWsConnection&) {}
  // One whole text or binary message; the view is valid during the call only.
  virtual void on_message(RawWsConnection& connection, std::string_view message) = 0;
  // After the messages of one socket read were delivered: for work done once per read.
  virtual void on_read_end(RawWsConnection&) {}
  // The connection ended or never opened, once per connect(); `reason` says why in one phrase.
  virtual void on_closed(RawWsConnection&, const std::string& reason) { (void)reason; }
};

class RawWsConnection final : public ClientEndpoint {
 public:
  RawWsConnection(ClientLoop& loop, RawWsHandler& handler);
  ~RawWsConnection() override;
  RawWsConnection(const RawWsConnection&) = delete;
  RawWsConnection& operator=(const RawWsConnection&) = delete;

  // Starts connecting to `url` (path and query included; ws:// only); the outcome arrives as
  // on_open or on_closed. Any previous connection must have closed.
  void connect(const WsUrl& url);
  // Queues a text message, masked, for the next writable round (ignored unless open).
  void send_text(std::string_view text);
  // Starts the closing handshake (our close frame, the server's answer, then the socket closes;
  // lws hangs up after 5 s without an answer). Before the upgrade it just hangs up.
  void close(std::uint16_t code = 1000);
  bool is_open() const { return m_phase == Phase::open; }
  // From connect() until on_closed: connecting, upgrading, open or closing.
  bool is_active() const { return m_phase != Phase::idle && m_phase != Phase::closed; }
  // The last attempt was refused with HTTP 401: retrying cannot help.
  bool refused_auth() const { return m_refused_auth; }

  // lws callback entry point.
  int on_event(lws* wsi, int reason, void* in, std::size_t len) override;

 private:
  enum class Phase { idle, connecting, upgrading, open, closing, closed };
  int on_connected(lws* wsi);
  int on_receive(std::string_view bytes);
  int on_frames(std::string_view bytes);
  int on_writeable();
  void on_socket_closed(std::string why);
  void queue_frame(WsOpcode opcode, std::string_view payload);
  void queue_close(std::uint16_t code);
  void fail(std::string why, std::uint16_t code);

  ClientLoop& m_loop;
  RawWsHandler& m_handler;
  lws* m_wsi = nullptr;
  Phase m_phase = Phase::idle;
  std::optional<WsUpgradeResponse> m_response;  // while upgrading
  std::string m_request;                        // the upgrade request, until it is queued
  WsFrameReader m_reader;
  std::string m_out;  // LWS_PRE bytes of headroom, then the bytes for the next lws_write
  bool m_close_sent = false;
  bool m_hang_up_after_write = false;  // failing the connection: close frame, then the socket
  bool m_refused_auth = false;
  std::string m_reason;  // why it ended, when we know better than "connection lost"
};

}  // namespace evstream
