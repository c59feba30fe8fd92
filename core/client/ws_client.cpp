#include "core/client/ws_client.hpp"

#include <ev.h>
#include <libwebsockets.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "core/util/error.hpp"

namespace evstream {

namespace {

constexpr std::size_t kRxBufferSize = 64 * 1024;
constexpr int kMaxWritesPerCallback = 32;
constexpr std::size_t kSmallFdTable = 256;

int client_callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, std::size_t len) {
  if (reason == LWS_CALLBACK_EVENT_WAIT_CANCELLED) {
    // A fake wsi without user data; never return non-zero here.
    if (auto* loop = static_cast<ClientLoop*>(lws_context_user(lws_get_context(wsi)))) {
      loop->handle_wake();
    }
    return 0;
  }
  switch (reason) {
    // Only connection callbacks carry our endpoint as `user`; protocol-level ones do not.
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
    case LWS_CALLBACK_CLIENT_RECEIVE:
    case LWS_CALLBACK_CLIENT_WRITEABLE:
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
    case LWS_CALLBACK_CLIENT_CLOSED:
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP:
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
    case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
    case LWS_CALLBACK_RAW_CONNECTED:  // RawWsConnection (raw_ws_client.hpp)
    case LWS_CALLBACK_RAW_RX:
    case LWS_CALLBACK_RAW_WRITEABLE:
    case LWS_CALLBACK_RAW_CLOSE:
      if (user != nullptr) {
        return static_cast<ClientEndpoint*>(user)->on_event(wsi, static_cast<int>(reason), in, len);
      }
      return 0;
    default:
      return lws_callback_http_dummy(wsi, reason, user, in, len);
  }
}

// TLS for wss:// and https://; EVSTREAM_INSECURE accepts self-signed and mismatched certificates.
int tls_flags(bool tls) {
  if (!tls) return 0;
  int flags = LCCSCF_USE_SSL;
  if (std::getenv("EVSTREAM_INSECURE") != nullptr) {
    flags |= LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
             LCCSCF_ALLOW_EXPIRED | LCCSCF_ALLOW_INSECURE;
  }
  return flags;
}

const lws_protocols kProtocols[] = {
    {"evstream-client", client_callback, 0, kRxBufferSize, 0, nullptr, 0},
    {nullptr, nullptr, 0, 0, 0, nullptr, 0},
};

}  // namespace

// A timer's sul with a way back to it; standard layout with the sul first, so the sul pointer
// lws hands back converts to this struct.
struct TimerSul {
  lws_sorted_usec_list_t sul;
  ClientLoop::Timer* timer;
};

struct ClientLoop::Timer {
  TimerSul sul{};         // under lws' poll() loop
  ev_timer ev_watcher{};  // under libev (see ClientLoop::after)
  ClientLoop* loop = nullptr;
  TimerId id = 0;
  std::function<void()> fn;
};

struct EvLoopDeleter {
  void operator()(struct ev_loop* loop) const { ev_loop_destroy(loop); }
};

struct ClientLoop::State {
  std::atomic<bool> stop{false};
  // libev's epoll loop under lws, when asked for and lws' libev plugin loaded; else lws' poll().
  // Destroyed after the lws context (~ClientLoop destroys that first).
  std::unique_ptr<struct ev_loop, EvLoopDeleter> ev;
  void* foreign_loop = nullptr;  // what lws_context_creation_info.foreign_loops points at
};

namespace {
void on_timer(lws_sorted_usec_list_t* sul) {
  auto* timer = reinterpret_cast<TimerSul*>(sul)->timer;
  timer->loop->fire(timer);
}

void on_ev_timer(struct ev_loop*, ev_timer* watcher, int) {
  auto* timer = static_cast<ClientLoop::Timer*>(watcher->data);
  timer->loop->fire(timer);
}
}  // namespace

ClientLoop::ClientLoop(const ClientLoopOptions& options) : m_state(std::make_unique<State>()) {
  lws_set_log_level(std::getenv("EVSTREAM_LWS_DEBUG") ? LLL_ERR | LLL_WARN | LLL_NOTICE : 0,
                    nullptr);
  lws_context_creation_info info{};
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.protocols = kProtocols;
  info.user = this;
  info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
  // A table sized below ulimit -n makes lws find a socket's connection by a linear scan of it
  // (wsi_from_fd), once per socket event: fine for a few connections, a tenth of loadtest's CPU
  // at 1,000. Beyond kSmallFdTable the table follows ulimit -n and the lookup is direct; its
  // untouched pages cost no memory.
  if (options.max_connections + 16 <= kSmallFdTable) {
    info.fd_limit_per_thread = static_cast<unsigned>(options.max_connections + 16);
  }
  info.pt_serv_buf_size = static_cast<unsigned>(options.read_size);  // 0: lws' default
  if (options.epoll) {
    // lws 4.1 drives libev through a plugin (package libwebsockets-evlib-ev); when it cannot be
    // loaded the context is not created, and the loop falls back to lws' poll().
    m_state->ev.reset(ev_loop_new(EVBACKEND_EPOLL));
    if (m_state->ev && options.collect_us > 0) {
      ev_set_io_collect_interval(m_state->ev.get(), static_cast<double>(options.collect_us) / 1e6);
    }
    if (m_state->ev) {
      m_state->foreign_loop = m_state->ev.get();
      info.options |= LWS_SERVER_OPTION_LIBEV;
      info.foreign_loops = &m_state->foreign_loop;
      m_context = lws_create_context(&info);
      if (m_context == nullptr) {
        m_state->ev.reset();
        info.options &= ~static_cast<std::uint64_t>(LWS_SERVER_OPTION_LIBEV);
        info.foreign_loops = nullptr;
      }
    }
  }
  if (m_context == nullptr) m_context = lws_create_context(&info);
  if (m_context == nullptr) throw Error("cannot create the WebSocket client context");
}

bool ClientLoop::uses_epoll() const {
  return m_state->ev != nullptr;
}

ClientLoop::~ClientLoop() {
  for (auto& timer : m_timers) {
    lws_sul_cancel(&timer->sul.sul);
    if (m_state->ev) ev_timer_stop(m_state->ev.get(), &timer->ev_watcher);
  }
  m_timers.clear();
  lws_context_destroy(m_context);
}

void ClientLoop::run(const std::function<bool()>& done) {
  while (!m_state->stop.load() && !done()) {
    if (m_state->ev) {
      ev_run(m_state->ev.get(), EVRUN_ONCE);  // one wait and what it found ready
    } else if (lws_service(m_context, 0) < 0) {
      break;
    }
  }
}

void ClientLoop::stop() {
  m_state->stop.store(true);
  lws_cancel_service(m_context);
}

bool ClientLoop::stopping() const {
  return m_state->stop.load();
}

void ClientLoop::wake() {
  lws_cancel_service(m_context);
}

void ClientLoop::handle_wake() {
  if (m_on_wake) m_on_wake();
}

ClientLoop::TimerId ClientLoop::after(std::int64_t delay_us, std::function<void()> fn) {
  auto timer = std::make_unique<Timer>();
  timer->sul.timer = timer.get();
  timer->loop = this;
  timer->id = m_next_timer++;
  timer->fn = std::move(fn);
  if (m_state->ev) {
    // Our own libev timer, not an lws sul: under libev, lws 4.1 keeps one timer armed for its
    // earliest sul and cannot move it earlier while it runs, so a sul due sooner than that (our
    // 20 ms ticks behind its 5 s timeouts) would wait for it.
    ev_now_update(m_state->ev.get());  // the loop's clock is as old as its last wake-up
    ev_timer_init(&timer->ev_watcher, on_ev_timer,
                  static_cast<double>(std::max<std::int64_t>(delay_us, 1)) / 1e6, 0.0);
    timer->ev_watcher.data = timer.get();
    ev_timer_start(m_state->ev.get(), &timer->ev_watcher);
  } else {
    lws_sul_schedule(m_context, 0, &timer->sul.sul, on_timer, std::max<std::int64_t>(delay_us, 1));
  }
  const TimerId id = timer->id;
  m_timers.push_back(std::move(timer));
  return id;
}

void ClientLoop::cancel_timer(TimerId id) {
  auto it = std::find_if(m_timers.begin(), m_timers.end(),
                         [id](const auto& timer) { return timer->id == id; });
  if (it == m_timers.end()) return;
  lws_sul_cancel(&(*it)->sul.sul);
  if (m_state->ev) ev_timer_stop(m_state->ev.get(), &(*it)->ev_watcher);
  m_timers.erase(it);
}

void ClientLoop::fire(Timer* timer) {
  auto it = std::find_if(m_timers.begin(), m_timers.end(),
                         [timer](const auto& t) { return t.get() == timer; });
  if (it == m_timers.end()) return;
  std::unique_ptr<Timer> owned = std::move(*it);
  m_timers.erase(it);
  owned->fn();
  // lws runs ripe timers and then polls within the same lws_service() call, so without a wake-up
  // run() would not re-check its exit condition until the next network event. (ev_run with
  // EVRUN_ONCE returns after the callbacks of its wake-up anyway.)
  if (!m_state->ev) lws_cancel_service(m_context);
}

WsConnection::WsConnection(ClientLoop& loop, WsHandler& handler)
    : m_loop(loop), m_handler(handler) {}

WsConnection::~WsConnection() {
  if (m_wsi != nullptr) {
    // Detach: lws may still deliver CLOSED for this wsi while the context goes down.
    lws_set_wsi_user(m_wsi, nullptr);
    lws_set_timeout(m_wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
  }
}

void WsConnection::connect(const WsUrl& url) {
  m_refused_auth = false;
  m_open = false;
  m_closing = false;
  m_peer_close.clear();
  m_rx.clear();
  // Frames still queued from a previous connection were never written on this one: the owner
  // resends what it needs after on_open. Keeping them would put stale frames on the new
  // connection ahead of the resends, and the publisher would match acks to the wrong lines.
  clear_queue();
  lws_client_connect_info info{};
  info.context = m_loop.context();
  info.address = url.host.c_str();
  info.port = url.port;
  info.path = url.path.c_str();
  info.host = url.host.c_str();
  info.origin = url.host.c_str();
  info.protocol = nullptr;  // lws routes by subprotocol; sending none reaches the default
  info.local_protocol_name = "evstream-client";
  info.userdata = this;
  info.pwsi = &m_wsi;
  info.ssl_connection = tls_flags(url.tls);
  if (lws_client_connect_via_info(&info) == nullptr) {
    m_wsi = nullptr;
    m_handler.on_closed(*this, "cannot connect to " + url.to_string());
  }
}

void WsConnection::send(std::string text) {
  if (m_write_at_once && m_open && m_wsi != nullptr && !m_closing && queued() == 0 &&
      !lws_partial_buffered(m_wsi)) {
    // lws keeps what the socket does not take and writes it before anything else.
    if (write_frame(text)) return;
    lws_set_timeout(m_wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);  // the socket failed
    return;
  }
  m_out.push_back(std::move(text));
  if (m_open && m_wsi != nullptr) lws_callback_on_writable(m_wsi);
}

bool WsConnection::write_frame(const std::string& text) {
  // Client frames are masked in place, so each write needs its own copy with LWS_PRE room.
  m_buffer.resize(LWS_PRE + text.size());
  std::memcpy(m_buffer.data() + LWS_PRE, text.data(), text.size());
  return lws_write(m_wsi, m_buffer.data() + LWS_PRE, text.size(), LWS_WRITE_TEXT) >=
         static_cast<int>(text.size());
}

void WsConnection::clear_queue() {
  m_out.clear();
  m_out_head = 0;
}

void WsConnection::close(int code, std::string reason) {
  if (m_wsi == nullptr) return;
  m_closing = true;
  m_close_code = code;
  m_close_reason = std::move(reason);
  lws_callback_on_writable(m_wsi);
}

int WsConnection::write_some() {
  if (m_closing) {
    lws_close_reason(m_wsi, static_cast<lws_close_status>(m_close_code),
                     reinterpret_cast<unsigned char*>(m_close_reason.data()),
                     m_close_reason.size());
    return -1;
  }
  for (int i = 0; i < kMaxWritesPerCallback && m_out_head < m_out.size(); ++i) {
    if (i > 0 && lws_send_pipe_choked(m_wsi)) break;
    if (!write_frame(m_out[m_out_head])) return -1;
    ++m_out_head;
  }
  if (m_out_head == m_out.size()) {
    clear_queue();
  } else {
    if (m_out_head > 1024) {
      m_out.erase(m_out.begin(), m_out.begin() + static_cast<std::ptrdiff_t>(m_out_head));
      m_out_head = 0;
    }
    lws_callback_on_writable(m_wsi);
  }
  return 0;
}

int WsConnection::on_event(lws* wsi, int reason, void* in, std::size_t len) {
  switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
      m_wsi = wsi;
      m_open = true;
      m_handler.on_open(*this);
      if (queued() > 0 || m_closing) lws_callback_on_writable(wsi);
      return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
      m_rx.append(static_cast<const char*>(in), len);
      if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
        std::string message = std::move(m_rx);
        m_rx.clear();
        m_handler.on_message(*this, message);
      }
      return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
      return write_some();
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: {
      const auto* bytes = static_cast<const unsigned char*>(in);
      const int code = len >= 2 ? (bytes[0] << 8) | bytes[1] : 1005;
      m_peer_close = "server closed the connection (" + std::to_string(code);
      if (len > 2)
        m_peer_close += " " + std::string(reinterpret_cast<const char*>(bytes) + 2, len - 2);
      m_peer_close += ")";
      return 0;
    }
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
      m_wsi = nullptr;
      m_open = false;
      std::string why = in != nullptr ? static_cast<const char*>(in) : "connection failed";
      // lws reports a 401 on the upgrade as "HS: ws upgrade unauthorized".
      m_refused_auth = why.find("unauthorized") != std::string::npos;
      if (m_refused_auth) {
        why =
            "the server refused the token (HTTP 401): pass the right --token or set "
            "EVSTREAM_TOKEN";
      }
      m_handler.on_closed(*this, why);
      return 0;
    }
    case LWS_CALLBACK_CLIENT_CLOSED: {
      m_wsi = nullptr;
      const bool was_closing = m_closing;
      m_open = false;
      m_handler.on_closed(*this, !m_peer_close.empty() ? m_peer_close
                                 : was_closing         ? "closed"
                                                       : "connection lost");
      return 0;
    }
    default:
      return 0;
  }
}

HttpGet::~HttpGet() {
  if (m_wsi != nullptr) {
    lws_set_wsi_user(m_wsi, nullptr);
    lws_set_timeout(m_wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
  }
}

void HttpGet::start(const WsUrl& server, const std::string& path_and_query) {
  m_done = false;
  m_response = {};
  m_host = server.host;
  m_path = path_and_query;
  lws_client_connect_info info{};
  info.context = m_loop.context();
  info.address = m_host.c_str();
  info.port = server.port;
  info.path = m_path.c_str();
  info.host = m_host.c_str();
  info.origin = m_host.c_str();
  info.method = "GET";
  info.local_protocol_name = "evstream-client";
  info.userdata = this;
  info.pwsi = &m_wsi;
  info.ssl_connection = tls_flags(server.tls);
  if (lws_client_connect_via_info(&info) == nullptr) {
    m_wsi = nullptr;
    finish("cannot connect to " + server.host + ":" + std::to_string(server.port));
  }
}

void HttpGet::finish(std::string error) {
  if (m_done) return;
  m_done = true;
  m_response.error = std::move(error);
}

int HttpGet::on_event(lws* wsi, int reason, void* in, std::size_t len) {
  switch (reason) {
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
      m_response.status = static_cast<int>(lws_http_client_http_response(wsi));
      return 0;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
      char buffer[4096 + LWS_PRE];
      char* p = buffer + LWS_PRE;
      int n = sizeof buffer - LWS_PRE;
      return lws_http_client_read(wsi, &p, &n) < 0 ? -1 : 0;
    }
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
      m_response.body.append(static_cast<const char*>(in), len);
      return 0;
    case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
      finish({});
      return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
      m_wsi = nullptr;
      finish(in != nullptr ? static_cast<const char*>(in) : "connection failed");
      return 0;
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
      m_wsi = nullptr;
      finish(m_response.status != 0 ? std::string{} : "connection closed");
      return 0;
    default:
      return 0;
  }
}

HttpGet::Response http_get(ClientLoop& loop, const WsUrl& server, const std::string& path,
                           std::int64_t timeout_us) {
  HttpGet request(loop);
  bool timed_out = false;
  const auto timer = loop.after(timeout_us, [&timed_out] { timed_out = true; });
  request.start(server, path);
  loop.run([&] { return request.done() || timed_out; });
  loop.cancel_timer(timer);
  if (!request.done()) return HttpGet::Response{0, {}, "timed out"};
  return request.response();
}

}  // namespace evstream
