#pragma once
// The libwebsockets client shared by publish, tail, replay --to and loadtest: one ClientLoop owns
// a client-only lws context and is serviced by the thread that calls run(); WsConnection is one
// WebSocket connection on it with an outbound queue and message reassembly. Everything except
// ClientLoop::wake()/stop() must be called on the loop thread.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/util/util.hpp"

struct lws;
struct lws_context;

namespace evstream {

struct ClientLoopOptions {
  // Sizes lws' fd table when it is small; with more, the table follows ulimit -n.
  std::size_t max_connections = 64;
  // The most lws reads from a socket at once (its per-thread buffer; 0: 4 KiB). A raw connection
  // gets what one read returns, so a receiver that may fall behind wants more.
  std::size_t read_size = 0;
  // Wait with libev's epoll instead of lws' poll(), which looks at every socket on each wake-up:
  // with many connections and few ready at a time, that look costs more than the reads. Needs
  // lws' libev plugin; without it the loop uses poll() (see uses_epoll()).
  bool epoll = false;
  // Under epoll: the loop looks at its sockets at most once per this many microseconds, taking
  // what became ready meanwhile in one go (libev's io collect interval). Fewer wake-ups, each
  // doing more, for up to this much added delay.
  std::int64_t collect_us = 0;
};

class ClientLoop {
 public:
  explicit ClientLoop(std::size_t max_connections = 64)
      : ClientLoop(ClientLoopOptions{max_connections}) {}
  explicit ClientLoop(const ClientLoopOptions& options);
  ~ClientLoop();
  ClientLoop(const ClientLoop&) = delete;
  ClientLoop& operator=(const ClientLoop&) = delete;

  lws_context* context() const { return m_context; }
  bool uses_epoll() const;
  // Services the loop until stop() was called or `done()` returns true (checked after every
  // event, timer and wake-up).
  void run(const std::function<bool()>& done);
  void stop();  // thread-safe
  void wake();  // thread-safe: runs the on_wake callback on the loop thread
  void set_on_wake(std::function<void()> on_wake) { m_on_wake = std::move(on_wake); }
  bool stopping() const;

  // One-shot timers on the loop thread. Returns a handle; cancel_timer() before it fires is safe.
  using TimerId = std::uint64_t;
  TimerId after(std::int64_t delay_us, std::function<void()> fn);
  void cancel_timer(TimerId id);

  struct Timer;
  void fire(Timer* timer);
  void handle_wake();

 private:
  lws_context* m_context = nullptr;
  std::function<void()> m_on_wake;
  std::vector<std::unique_ptr<Timer>> m_timers;
  TimerId m_next_timer = 1;
  struct State;
  std::unique_ptr<State> m_state;
};

// What lws' client callback dispatches to (the wsi's user pointer).
class ClientEndpoint {
 public:
  virtual ~ClientEndpoint() = default;
  virtual int on_event(lws* wsi, int reason, void* in, std::size_t len) = 0;
};

// One HTTP GET on the loop (health figures for loadtest, REST pages for replay).
class HttpGet final : public ClientEndpoint {
 public:
  struct Response {
    int status = 0;  // 0 when the request failed before a response
    std::string body;
    std::string error;
  };
  explicit HttpGet(ClientLoop& loop) : m_loop(loop) {}
  ~HttpGet() override;
  // Starts the request; done() turns true once the response (or failure) is in response().
  void start(const WsUrl& server, const std::string& path_and_query);
  bool done() const { return m_done; }
  const Response& response() const { return m_response; }
  int on_event(lws* wsi, int reason, void* in, std::size_t len) override;

 private:
  void finish(std::string error);
  ClientLoop& m_loop;
  lws* m_wsi = nullptr;
  bool m_done = false;
  Response m_response;
  std::string m_host;
  std::string m_path;
};

// Runs one GET to completion on `loop` (which must not be running) within `timeout_us`.
HttpGet::Response http_get(ClientLoop& loop, const WsUrl& server, const std::string& path,
                           std::int64_t timeout_us = 5'000'000);

class WsConnection;

class WsHandler {
 public:
  virtual ~WsHandler() = default;
  virtual void on_open(WsConnection&) {}
  virtual void on_message(WsConnection& connection, std::string_view text) = 0;
  // The connection ended or never opened; `reason` says why in one phrase.
  virtual void on_closed(WsConnection&, const std::string& reason) { (void)reason; }
};

class WsConnection final : public ClientEndpoint {
 public:
  WsConnection(ClientLoop& loop, WsHandler& handler);
  ~WsConnection() override;
  WsConnection(const WsConnection&) = delete;
  WsConnection& operator=(const WsConnection&) = delete;

  // Starts connecting to `url` (with its path and query). The outcome arrives as on_open or
  // on_closed. Any previous connection must have closed.
  void connect(const WsUrl& url);
  void send(std::string text);  // queued; written as the socket allows
  // send() writes into the socket at once when nothing is queued before it, instead of waiting
  // for the loop to find the socket writable (for timestamps taken just before a send).
  void set_write_at_once(bool at_once) { m_write_at_once = at_once; }
  void close(int code = 1000, std::string reason = {});
  bool is_open() const { return m_open; }
  bool is_connecting() const { return m_wsi != nullptr && !m_open; }
  // The last attempt was refused with HTTP 401: retrying cannot help.
  bool refused_auth() const { return m_refused_auth; }
  std::size_t queued() const { return m_out.size() - m_out_head; }
  void clear_queue();
  std::uint64_t tag = 0;  // free for the owner (loadtest numbers its connections)

  // lws callback entry points.
  int on_event(lws* wsi, int reason, void* in, std::size_t len) override;

 private:
  int write_some();
  bool write_frame(const std::string& text);
  ClientLoop& m_loop;
  WsHandler& m_handler;
  lws* m_wsi = nullptr;
  bool m_open = false;
  bool m_closing = false;
  bool m_refused_auth = false;
  int m_close_code = 1000;
  std::string m_close_reason;
  std::string m_peer_close;
  std::string m_rx;
  std::vector<std::string> m_out;
  std::size_t m_out_head = 0;
  bool m_write_at_once = false;
  std::vector<unsigned char> m_buffer;
};

}  // namespace evstream
