// One service thread of serve: its lws_context, its loop and shutdown phases, the fan-out's
// hand-offs (broadcasts and publish replies) and the ping timer. Everything here runs on that
// thread, except wake().
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/server/server_impl.hpp"
#include "core/util/error.hpp"
#include "core/wire/protocol.hpp"

namespace evstream {

namespace {

constexpr std::int64_t kDrainTimeoutUs = 10'000'000;  // to commit and ack what was accepted
constexpr std::int64_t kCloseTimeoutUs = 3'000'000;   // for clients to take their close frame
constexpr std::int64_t kPhaseTickUs = 50'000;
// Subscribers send little (pongs), so a small rx buffer keeps idle connections cheap; larger
// publish frames arrive in several fragments and are reassembled.
constexpr std::size_t kRxBufferSize = 1024;
constexpr lws_retry_bo_t kNoIdlePolicy{};
// A connection must finish its request headers this long after it was accepted, however it
// trickles them, or lws drops it unanswered (slowloris); the README states it. lws' default,
// set here so the promise does not depend on it.
constexpr unsigned kHeaderTimeoutSecs = 10;
// lws' allowance for the next piece of a request body (and its other network steps): a body that
// stops arriving for this long is dropped unanswered. Also lws' default.
constexpr unsigned kNetworkStepTimeoutSecs = 5;
// Connections accepted from a shared listening socket per wake-up, so a flood of connects cannot
// hold the thread away from its subscribers; the rest wait for the next poll.
constexpr int kAcceptBurst = 64;
constexpr const char* kListenProtocol = "evstream-listen";
// What lws' own listener adopts an accepted socket as (HTTP, and TLS when the vhost has it).
constexpr auto kAdoptAccepted =
    static_cast<lws_adoption_type>(LWS_ADOPT_SOCKET | LWS_ADOPT_HTTP | LWS_ADOPT_ALLOW_SSL);

// lws reports a failed bind only in its own log, so probe the address to say why.
std::string bind_failure(const std::string& host, int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return std::strerror(errno);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  std::string reason = "unknown error";
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    reason = "not an IPv4 address";
  } else if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    reason = std::strerror(errno);
  }
  close(fd);
  return reason;
}

void on_timer(lws_sorted_usec_list_t* sul) {
  auto* timer = reinterpret_cast<ServiceTimer*>(sul);
  Service& service = *timer->owner;
  if (timer == &service.ping_timer) {
    service.on_ping_timer();
  } else {
    // The phase timer only makes run() re-check shutdown progress. lws polls again right after
    // running ripe timers inside the same lws_service() call, so wake that poll explicitly.
    lws_sul_schedule(service.context.get(), 0, sul, on_timer, kPhaseTickUs);
    lws_cancel_service(service.context.get());
  }
}

}  // namespace

Service::Service(Server::Impl& shared, std::size_t number, std::optional<ListenSocket> listener)
    : server(shared),
      options(shared.options),
      log(shared.log),
      index(number),
      inbox([this] { wake(); }),
      hub(QueueLimits{options.client_queue, options.client_queue_bytes}, *this) {
  read_store = std::make_unique<Store>(server.store_path, Store::Mode::read_only);
  head = server.fanout->head();  // the log has not started: every thread starts here
  ping_timer.owner = this;
  phase_timer.owner = this;
  create_context(std::move(listener));
}

Service::~Service() {
  if (context) {
    lws_sul_cancel(&ping_timer.sul);
    lws_sul_cancel(&phase_timer.sul);
  }
  context.reset();  // closes what is left; CLOSED callbacks still find `sessions`
}

void Service::create_context(std::optional<ListenSocket> listener) {
  protocols[0] = {"http", http_callback, 0, 0, 0, nullptr, 0};
  protocols[1] = {"evstream", bus_callback, sizeof(Session*),  kRxBufferSize,
                  0,          nullptr,      kMaxCoalescedBytes};
  protocols[2] = {nullptr, nullptr, 0, 0, 0, nullptr, 0};
  if (listener) protocols[2] = {kListenProtocol, listen_callback, 0, 0, 0, nullptr, 0};
  protocols[3] = {nullptr, nullptr, 0, 0, 0, nullptr, 0};
  // lws routes WebSocket upgrades by subprotocol, not path: make "evstream" the default so
  // clients that send no subprotocol land there, then route by path ourselves.
  pvo_default = {nullptr, nullptr, "default", "1"};
  pvo = {nullptr, &pvo_default, "evstream", ""};
  mount.mountpoint = "/";
  mount.mountpoint_len = 1;
  mount.origin = "http";
  mount.origin_protocol = LWSMPRO_CALLBACK;
  mount.protocol = "http";

  lws_context_creation_info info{};
  // A shared listening socket is ours, so lws must not open one; it still serves (and does TLS
  // for) what it is handed.
  info.port = listener ? CONTEXT_PORT_NO_LISTEN_SERVER : options.port;
  info.iface = options.host.c_str();
  info.protocols = protocols.data();
  info.pvo = &pvo;
  info.mounts = &mount;
  // Liveness is ours (JSON pings, 2 x --ping-interval): without lws' own idle policy no
  // connection carries a validity timer, which lws keeps in one sorted list per thread.
  info.retry_and_idle_policy = &kNoIdlePolicy;
  info.user = this;
  info.timeout_secs_ah_idle = kHeaderTimeoutSecs;
  info.timeout_secs = kNetworkStepTimeoutSecs;
  info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
  if (!options.cert_path.empty()) {
    info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.ssl_cert_filepath = options.cert_path.c_str();
    info.ssl_private_key_filepath = options.key_path.c_str();
  }
  const int lws_levels = log.enabled(LogLevel::debug) ? LLL_ERR | LLL_WARN | LLL_NOTICE : LLL_ERR;
  // lws reports a failed start in several lines of its own; the Error below says it in one.
  lws_set_log_level(log.enabled(LogLevel::debug) ? lws_levels : 0, nullptr);
  context.reset(lws_create_context(&info));
  lws_set_log_level(lws_levels, nullptr);
  if (!context) {
    const std::string reason =
        listener ? "unknown error" : bind_failure(options.host, options.port);
    if (reason == "unknown error" && !options.cert_path.empty()) {
      throw Error("cannot start TLS with --cert " + options.cert_path + " and --key " +
                  options.key_path + " (check that both are readable PEM files that match)");
    }
    throw Error("cannot listen on " + options.host + ":" + std::to_string(options.port) + ": " +
                reason + " (choose another --port, or stop the process using it)");
  }
  vhost = lws_get_vhost_by_name(context.get(), "default");
  port = vhost != nullptr ? lws_get_vhost_listen_port(vhost) : options.port;
  if (listener) {
    port = listener->port();
    // lws polls the socket like any file and says when it is readable; it owns (and in the end
    // closes) the fd from here, also when the adoption fails.
    lws_sock_file_fd_type fd{};
    fd.filefd = listener->release();
    if (vhost == nullptr || lws_adopt_descriptor_vhost(vhost, LWS_ADOPT_RAW_FILE_DESC, fd,
                                                       kListenProtocol, nullptr) == nullptr) {
      throw Error("cannot listen on " + options.host + ":" + std::to_string(port) +
                  ": libwebsockets did not take the listening socket");
    }
  }
  lws_sul_schedule(context.get(), 0, &ping_timer.sul, on_timer, options.ping_interval_us);
}

// The shared listening socket is readable: accept what waits and hand each connection to lws as
// its own listener would (the same adoption call, so HTTP, WebSocket upgrades and TLS follow).
int Service::accept_connections(int listen_fd) {
  for (int i = 0; i < kAcceptBurst; ++i) {
    const int fd = accept_connection(listen_fd);
    if (fd < 0) {
      if (errno == EINTR) continue;
      // EAGAIN: nothing is left (each thread has a socket of its own). EMFILE and the like: lws'
      // own listener gives up the same way and tries again on the next poll.
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        log.debug("accept failed", {{"error", std::strerror(errno)}});
      }
      break;
    }
    lws_sock_file_fd_type desc{};
    desc.sockfd = fd;
    // On failure lws has closed the socket already.
    lws_adopt_descriptor_vhost(vhost, kAdoptAccepted, desc, nullptr, nullptr);
  }
  return 0;
}

int listen_callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, std::size_t len) {
  switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
      try {
        return service_of(wsi).accept_connections(lws_get_socket_fd(wsi));
      } catch (const std::exception& e) {
        service_of(wsi).log.error("internal error", {{"what", e.what()}});
        return 0;  // closing the listening socket would stop this thread accepting for good
      }
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
      return 1;  // a name in the protocol list, but never a WebSocket subprotocol to choose
    default:
      return lws_callback_http_dummy(wsi, reason, user, in, len);
  }
}

void Service::run() {
  while (phase != Phase::done) {
    if (lws_service(context.get(), 0) < 0) {
      server.request_stop();  // this thread cannot go on: the server stops, as with one thread
      break;
    }
    const std::int64_t now = now_unix_us();
    if (phase == Phase::serving && server.stop_requested.load()) begin_drain();
    // Drained means the log has handed out everything (under the fan-out's lock, so nothing is
    // half way) and this thread has taken it: its last broadcasts and replies are queued.
    if (phase == Phase::draining &&
        ((server.fanout->drained() && inbox.empty() && publishers_idle()) ||
         now > phase_deadline_us)) {
      begin_closing();
    }
    if (phase == Phase::closing && (sessions.empty() || now > phase_deadline_us)) {
      phase = Phase::done;
    }
  }
}

void Service::wake() {
  lws_cancel_service(context.get());
}

void Service::on_wake() {
  if (phase != Phase::serving) server.fanout->pump();  // acks no longer wait for the replica
  taking_handoffs = true;
  try {
    take_handoffs();
  } catch (...) {
    taking_handoffs = false;
    flush_woken();  // what was queued before the failure still goes out
    throw;
  }
  taking_handoffs = false;
  flush_woken();
}

void Service::take_handoffs() {
  for (const Handoff& handoff : inbox.take()) {
    if (handoff.broadcasts) {
      for (const Broadcast& event : *handoff.broadcasts) broadcast(event);
    }
    for (const PublishReply& reply : handoff.replies) {
      if (reply.unconfirmed) {
        unconfirmed(reply);
      } else {
        acknowledge(reply);
      }
    }
  }
}

void Service::broadcast(const Broadcast& event) {
  head = event.record.id;
  hub.publish(event.record, event.frame);
}

std::uint64_t Service::next_id() {
  return connection_id(index, options.threads, ids_issued++);
}

// JetStream did not confirm an event (NATS away, no quorum, timeout): it may or may not be
// stored, so no reply may claim either. The publisher's connection ends with 1013 after the
// replies owed for earlier frames, and the client resends from there under the same keys (the
// stream's duplicate window turns a resend of a stored event into a duplicate ack).
void Service::unconfirmed(const PublishReply& reply) {
  if (reply.tag & kHttpTagBit) on_http_committed(reply);
  auto found = sessions.find(reply.tag);
  if (found == sessions.end()) return;
  Session& publisher = *found->second;
  --publisher.in_flight;
  if (!publisher.replies_cut) {
    publisher.replies_cut = true;
    publisher.queue.cut_at_placeholder();
    log.warn("unconfirmed publish", {{"id", publisher.id}, {"error", *reply.error}});
    close_later(publisher, kCloseTryAgainLater, "try again later: JetStream did not confirm", true);
  }
  wake(publisher);
}

void Service::acknowledge(const PublishReply& reply) {
  if (reply.tag & kHttpTagBit) on_http_committed(reply);
  auto found = sessions.find(reply.tag);
  if (found == sessions.end()) return;
  Session& publisher = *found->second;
  if (publisher.replies_cut) {  // this frame's reply was cut with the unconfirmed one's
    --publisher.in_flight;
    wake(publisher);
    return;
  }
  publisher.queue.fill_placeholder(
      make_text_frame(reply.error ? encode_error("the event was not stored: " + *reply.error)
                                  : encode_ack(reply.result.id, reply.result.duplicate)));
  --publisher.in_flight;
  wake(publisher);
}

void Service::on_ping_timer() {
  const std::int64_t now = now_unix_us();
  const auto ping = make_text_frame(encode_ping(now));
  for (auto& [id, session] : sessions) {
    if (session->role != Role::subscriber || session->close_code != 0) continue;
    if (session->http_stream && stream_peer_gone(session->wsi)) {
      session->end_reason = "client closed";
      lws_set_timeout(session->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
      continue;
    }
    // An HTTP stream's client never speaks; its liveness is the check above.
    if (!session->http_stream && now - session->last_rx_us > 2 * options.ping_interval_us) {
      ++counters.dead_clients;
      session->end_reason =
          "dead: nothing received for " + std::to_string((now - session->last_rx_us) / 1000) + "ms";
      lws_set_timeout(session->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
      continue;
    }
    hub.enqueue(*session, ping);
  }
  lws_sul_schedule(context.get(), 0, &ping_timer.sul, on_timer, options.ping_interval_us);
}

void Service::begin_drain() {
  if (index == 0) {
    log.info("shutting down", {{"queued", static_cast<std::int64_t>(server.writer->queued())}});
  }
  phase = Phase::draining;
  phase_deadline_us = now_unix_us() + kDrainTimeoutUs;
  server.stop_intake();
  lws_sul_schedule(context.get(), 0, &phase_timer.sul, on_timer, kPhaseTickUs);
}

bool Service::publishers_idle() const {
  if (!http_pending.empty()) return false;  // POST /api/events still waiting for the store
  for (const auto& [id, session] : sessions) {
    // Only acks still owed count: a publisher that keeps sending keeps getting "shutting down"
    // errors, and must not hold the server open. Queued replies leave before the close frame.
    if (session->role == Role::publisher && session->in_flight > 0) return false;
  }
  return true;
}

void Service::begin_closing() {
  phase = Phase::closing;
  phase_deadline_us = now_unix_us() + kCloseTimeoutUs;
  for (auto& [id, session] : sessions) close_later(*session, 1001, "going away", true);
}

}  // namespace evstream
