#pragma once
// Internals of Server: the process-wide part (server.cpp: the log, the fan-out, the threads) and
// one service thread's part (service.cpp: context, loop, shutdown; ws.cpp: the WebSocket
// callbacks; http.cpp, stream.cpp, api_routes.cpp: HTTP). Not part of the public API.
#include <libwebsockets.h>

#include <array>
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/server/fanout.hpp"
#include "core/server/hub.hpp"
#include "core/server/listener.hpp"
#include "core/server/metrics.hpp"
#include "core/server/server.hpp"
#include "core/store/wal.hpp"
#include "core/store/writer.hpp"
#include "core/wire/http_stream.hpp"

namespace evstream {

enum class Role { subscriber, publisher };

// One WebSocket connection, or one GET /api/events/stream response (`http_stream` set): a
// subscriber like any other to the hub, written as SSE or NDJSON instead of WebSocket frames.
// Subscribers use the inherited Subscriber part with the hub; publishers
// use only its queue, for their replies (a placeholder holds the place of an ack not yet known, so
// replies leave in the order the frames came).
struct Session : Subscriber {
  Role role = Role::subscriber;
  std::optional<StreamFormat> http_stream;
  lws* wsi = nullptr;
  std::string peer;
  std::string path;
  std::int64_t connected_us = 0;
  std::int64_t last_rx_us = 0;
  std::string rx;  // reassembly of a fragmented message
  bool rx_binary = false;
  std::size_t in_flight = 0;  // publisher: events submitted, not yet acked
  bool rx_paused = false;     // publisher: flow control while the window is full
  int close_code = 0;         // set: close with this code once the queue allows
  bool close_when_drained = false;
  bool close_sent = false;   // our close frame is out; waiting for the peer's
  bool replies_cut = false;  // publisher: an event went unconfirmed, later replies are dropped
  std::string close_reason;  // sent in the close frame and logged
  std::string end_reason;    // logged on disconnect when no close_code explains it
  // A subscriber still reading the store (seeking back for last= or catching up), not closing.
  bool catching_up() const { return role == Role::subscriber && !live && close_code == 0; }
};

// One HTTP request/response on a connection (keep-alive reuses the connection for the next).
// Headers are copied in LWS_CALLBACK_HTTP: lws may not keep them until the body has arrived.
struct HttpExchange {
  std::string method;  // HEAD is answered as GET without the body
  bool head_only = false;
  std::string path;
  std::vector<std::pair<std::string, std::string>> args;  // query, URL-decoded
  std::string token;            // from "Authorization: Bearer" or token=; never logged
  std::string origin;           // Origin header, empty when absent
  std::string content_type;     // request Content-Type
  std::string idempotency_key;  // Idempotency-Key header
  std::size_t body_limit = 0;   // past it: 413
  std::string body_in;
  bool body_too_large = false;
  // POST /api/events waits for the store: `tag` (an HTTP tag, see kHttpTagBit) names its events
  // in StoreWriter results; the response is ready once `awaiting` reaches 0.
  std::uint64_t tag = 0;
  bool ndjson = false;  // reply {"ids":[...]} rather than {"id":N}
  std::size_t awaiting = 0;
  std::vector<std::pair<EventId, bool>> committed;  // id, duplicate; in body order
  std::string store_error;
  bool log_unavailable = false;  // cluster mode: JetStream did not confirm; 503, resend later
  bool ready = false;            // body_out is final; HTTP_WRITEABLE may send it
  unsigned status = 200;
  std::string content_type_out = "application/json";
  std::vector<std::pair<std::string, std::string>> headers_out;  // extra response headers
  std::string body_out;
  std::size_t sent = 0;
  bool headers_sent = false;
  std::uint64_t stream_session = 0;  // GET /api/events/stream: the Session it became
};

// What a subscriber asked for (/ws/events and /api/events/stream take the same parameters).
struct SubscriptionRequest {
  std::vector<std::string> topics;
  std::optional<std::int64_t> since;
  std::optional<std::int64_t> last;
  std::shared_ptr<const Filter> filter;  // where= (every one must hold); null without
  std::string problem;                   // set: a bad parameter, said for the user
};

// Queued frames are coalesced into writes of at most this much; lws is told the same limit
// (tx_packet_size), or it would send only rx_buffer_size bytes and buffer the rest for a second
// syscall on the next writable round.
inline constexpr std::size_t kMaxCoalescedBytes = 64 * 1024;

// RFC 6455 "Try Again Later": the server cannot take the frame now; reconnect and resend.
inline constexpr int kCloseTryAgainLater = 1013;

// A service thread's counts; it writes them, any thread reads them for /metrics and health.
struct Counters {
  Tally connections_total;
  Tally rejected_frames;
  Tally messages_out;
  Tally bytes_out;
  Tally dead_clients;
  Tally refused_connections;
  Tally slow_consumers;
  Tally open_sessions;  // `sessions` of the thread, kept here so other threads can read it
  Tally publishers;     // of those, publishers
};

class Service;

// A sul with a way back to its owner: lws hands the callback only the sul pointer.
struct ServiceTimer {
  lws_sorted_usec_list_t sul{};  // first member, so a sul* converts back to ServiceTimer*
  Service* owner = nullptr;
};

// One service thread: its own lws_context (every socket it accepted), its sessions and hub, its
// read-only store connection, its timers. Everything here runs on that thread, except what is
// said to be readable elsewhere (counters, metrics) and the inbox. What all threads share, and
// the threads themselves, are Server::Impl's.
class Service final : public HubSink {
 public:
  // Creates the context; with a `listener` (serve --threads > 1) lws does not listen itself but
  // the context watches that socket (ownership passes to lws). Throws Error when it cannot.
  Service(Server::Impl& server, std::size_t index, std::optional<ListenSocket> listener);
  ~Service() override;
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // service.cpp
  void create_context(std::optional<ListenSocket> listener);
  void run();      // serves until the server stops; on this thread only
  void wake();     // any thread: lws_cancel_service on this thread's context
  void on_wake();  // EVENT_WAIT_CANCELLED: what the inbox holds, then stop requests
  void take_handoffs();
  int accept_connections(int listen_fd);
  void broadcast(const Broadcast& broadcast);
  void acknowledge(const PublishReply& reply);
  void unconfirmed(const PublishReply& reply);
  std::uint64_t next_id();  // for a connection or an HTTP request (see connection_id)
  void on_ping_timer();
  void begin_drain();
  void begin_closing();
  bool publishers_idle() const;

  // http.cpp
  int on_http_start(lws* wsi);
  int on_http_request(lws* wsi, HttpExchange& exchange);
  void route_http(lws* wsi, HttpExchange& exchange);
  int on_http_writeable(lws* wsi, HttpExchange& exchange);
  void on_http_closed(lws* wsi);

  // stream.cpp: GET /api/events/stream (SSE and NDJSON)
  struct Refusal {
    unsigned status;
    std::string message;
  };
  std::optional<Refusal> open_stream(lws* wsi, HttpExchange& exchange);
  bool write_stream_headers(lws* wsi, HttpExchange& exchange, StreamFormat format);
  int on_stream_writeable(lws* wsi, Session& session);
  bool origin_allowed(lws* wsi, std::string_view origin) const;
  enum class Access { read, publish };
  bool authorized(Access access, std::string_view token) const;

  // api_routes.cpp
  std::string health_json(bool full);
  std::string metrics_text();
  std::string nats_json() const;  // cluster mode's part of /api/health
  std::uint64_t replica_lag(const JetStreamStatus& nats) const;  // stream events not yet here
  void get_events(HttpExchange& exchange);
  void get_event(HttpExchange& exchange, std::string_view id_text);
  void post_events(lws* wsi, HttpExchange& exchange);
  void on_http_committed(const PublishReply& reply);
  void finish_post(HttpExchange& exchange);

  // ws.cpp
  int on_confirm_upgrade(lws* wsi);
  int on_established(lws* wsi, Session** slot);
  int on_receive(Session& session, const char* in, std::size_t len);
  int on_writeable(Session& session);
  bool write_ready_frames(Session& session);
  void flush_woken();
  void record_sent(std::size_t messages, std::size_t bytes);
  void on_closed(Session& session);
  void on_peer_close(Session& session, const unsigned char* in, std::size_t len);
  void handle_subscriber_message(Session& session, std::string_view text);
  void handle_publish(Session& session, std::string_view text);
  SubscriptionRequest parse_subscription(
      const std::vector<std::pair<std::string, std::string>>& args);
  void start_subscription(Session& session, SubscriptionRequest request);
  Session& add_session(lws* wsi, Role role, std::string path);
  void reply(Session& session, std::string_view payload);
  void close_later(Session& session, int code, std::string reason, bool after_drain);
  void wake(Subscriber& subscriber) override;
  void overflowed(Subscriber& subscriber) override;

  Server::Impl& server;  // what the threads share: the log, the fan-out, the other threads
  const ServerOptions& options;
  Logger& log;
  const std::size_t index;  // this thread's number, 0 for the one that called Server::run()
  Inbox inbox;              // the fan-out's hand-offs to this thread
  std::unique_ptr<Store> read_store;
  Hub hub;
  Counters counters;
  ServerMetrics metrics;
  std::unordered_map<std::uint64_t, lws*> http_pending;  // HTTP tag -> connection awaiting store
  std::unordered_map<std::uint64_t, std::unique_ptr<Session>> sessions;
  std::unordered_map<lws*, std::unique_ptr<HttpExchange>> http_exchanges;
  std::uint64_t ids_issued = 0;  // connection ids and HTTP tags handed out by next_id()
  EventId head = 0;  // newest id broadcast here: everything <= head is stored and was delivered

  enum class Phase { serving, draining, closing, done } phase = Phase::serving;
  std::int64_t phase_deadline_us = 0;

  // While on_wake() takes hand-offs, connections given frames are listed here and written once
  // after the last hand-off (flush_woken), instead of each waiting for a writable round.
  bool taking_handoffs = false;
  std::vector<Session*> woken;
  std::vector<unsigned char> scratch;          // LWS_PRE + coalesced frames for one write
  std::vector<std::int64_t> scratch_accepted;  // accepted_us of the broadcasts in that write
  std::string stream_out;                      // an HTTP stream's next write, as SSE or NDJSON
  std::array<lws_protocols, 4> protocols{};
  lws_protocol_vhost_options pvo_default{};
  lws_protocol_vhost_options pvo{};
  lws_http_mount mount{};
  struct ContextDeleter {
    void operator()(lws_context* context) const { lws_context_destroy(context); }
  };
  std::unique_ptr<lws_context, ContextDeleter> context;
  lws_vhost* vhost = nullptr;
  int port = 0;
  ServiceTimer ping_timer;
  ServiceTimer phase_timer;
};

// The process-wide part of serve: the options, the log (store thread, WAL checkpointer and, in
// cluster mode, JetStream), the fan-out from the log to the service threads, and the threads.
struct Server::Impl {
  Impl(ServerOptions options, Logger& logger);
  ~Impl();

  void run();  // runs service 0 on the calling thread and the others on threads of their own
  void request_stop();
  std::string url() const;
  // Any service thread: one event to the log of record (the store writer, or JetStream).
  StoreWriter::SubmitResult submit(NewEvent event, std::uint64_t tag);
  // Ends intake at shutdown (every service thread calls it; the first one does it).
  void stop_intake();
  // Connections open over all threads (for --max-clients), read from their counters.
  std::size_t open_sessions() const;
  void connect_jetstream(EventId head);

  ServerOptions options;
  Logger& log;
  std::string store_path;  // the path every connection opens (a shared-cache URI for :memory:)
  std::int64_t events_at_start = 0;  // rows stored at startup; events_total adds events_in
  std::int64_t started_us = 0;
  std::atomic<bool> stop_requested{false};
  // Declared in the order they are built; the destructor takes them apart in reverse, the
  // fan-out stopped first so that no thread hands anything to a service being destroyed.
  std::unique_ptr<Fanout> fanout;
  std::unique_ptr<WalCheckpointer> checkpointer;  // before `writer`: it outlives the writer's hook
  std::vector<std::unique_ptr<Service>> services;
  std::unique_ptr<JetStreamLog> jetstream;  // cluster mode: the log of record; feeds `writer`
  std::unique_ptr<StoreWriter> writer;
};

// http.cpp: the token a request presents ("Authorization: Bearer T", else ?token=T), for
// HTTP requests and WebSocket upgrades alike; empty when none. Never log it.
std::string request_token(lws* wsi);

// http.cpp: writes a complete HTTP/1.1 error response ({"error":MESSAGE}, connection: close) on
// a request lws is still parsing (an upgrade being refused, a body that cannot be framed); the
// caller then returns non-zero so lws closes the connection once it is written.
void write_refusal(lws* wsi, unsigned status, std::string_view message);

// The service thread behind any wsi of its context (the context's user pointer).
inline Service& service_of(lws* wsi) {
  return *static_cast<Service*>(lws_context_user(lws_get_context(wsi)));
}

// A request header's value; empty when absent. Only valid until the upgrade completes.
inline std::string header(lws* wsi, lws_token_indexes token) {
  const int len = lws_hdr_total_length(wsi, token);
  if (len <= 0) return {};
  std::string value(static_cast<std::size_t>(len) + 1, '\0');
  const int copied = lws_hdr_copy(wsi, value.data(), len + 1, token);
  value.resize(copied > 0 ? static_cast<std::size_t>(copied) : 0);
  return value;
}

// A header lws has no token for, by its lower-cased name with the colon ("last-event-id:").
inline std::string custom_header(lws* wsi, const char* name_with_colon) {
  const int name_len = static_cast<int>(std::char_traits<char>::length(name_with_colon));
  const int len = lws_hdr_custom_length(wsi, name_with_colon, name_len);
  if (len <= 0) return {};
  std::string value(static_cast<std::size_t>(len) + 1, '\0');
  const int copied = lws_hdr_custom_copy(wsi, value.data(), len + 1, name_with_colon, name_len);
  value.resize(copied > 0 ? static_cast<std::size_t>(copied) : 0);
  return value;
}

// Every "name=value" query argument, URL-decoded by lws. Only valid until the upgrade completes.
inline std::vector<std::pair<std::string, std::string>> query_args(lws* wsi) {
  std::vector<std::pair<std::string, std::string>> args;
  char buf[2048];
  for (int i = 0; i < 64; ++i) {
    const int n = lws_hdr_copy_fragment(wsi, buf, sizeof buf, WSI_TOKEN_HTTP_URI_ARGS, i);
    if (n < 0) break;
    std::string_view arg(buf, static_cast<std::size_t>(n));
    const auto eq = arg.find('=');
    args.emplace_back(std::string(arg.substr(0, eq)),
                      eq == std::string_view::npos ? "" : std::string(arg.substr(eq + 1)));
  }
  return args;
}

// stream.cpp: the client of an HTTP stream has closed its end (or the socket failed).
bool stream_peer_gone(lws* wsi);

int bus_callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, std::size_t len);
int http_callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, std::size_t len);
// service.cpp: the protocol watching a shared listening socket (serve --threads > 1).
int listen_callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, std::size_t len);

}  // namespace evstream
