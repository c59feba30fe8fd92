#include "core/server/server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
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

// Lets a 10k-subscriber server use every fd the hard limit allows.
void raise_fd_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

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

std::string memory_store_uri() {
  static_assert(sizeof(pid_t) <= sizeof(long));
  return "file:evstream-memory-" + std::to_string(static_cast<long>(getpid())) + "-" +
         std::to_string(now_unix_us()) + "?mode=memory&cache=shared";
}

// A cluster node's database is a replica numbered by its stream; a standalone store numbers its
// own events. Mixing them would give two events one id, so each database remembers which it is.
void check_log_kind(Store& store, const ServerOptions& options) {
  const auto kind = store.setting("log");
  const std::string db = options.db;
  if (!options.nats) {
    if (kind && kind->starts_with("nats:")) {
      throw Error("database " + db + " is a replica of JetStream stream " + kind->substr(5) +
                  " (written by serve --nats): start serve with --nats, or pass another --db");
    }
    return;
  }
  const std::string wanted = "nats:" + options.nats->stream;
  if (kind == wanted) return;
  if (kind) {
    throw Error("database " + db + " is a replica of JetStream stream " + kind->substr(5) +
                ", not " + options.nats->stream + ": pass that --nats-stream or another --db");
  }
  if (store.last_id() > 0) {
    throw Error("database " + db +
                " holds events of a standalone server, whose ids would clash with the "
                "stream's: give this cluster node a new --db (replay --db ... | publish copies "
                "old events into the stream)");
  }
  store.set_setting("log", wanted);
}

void on_timer(lws_sorted_usec_list_t* sul) {
  auto* timer = reinterpret_cast<ServerTimer*>(sul);
  Server::Impl& impl = *timer->owner;
  if (timer == &impl.ping_timer) {
    impl.on_ping_timer();
  } else {
    // The phase timer only makes run() re-check shutdown progress. lws polls again right after
    // running ripe timers inside the same lws_service() call, so wake that poll explicitly.
    lws_sul_schedule(impl.context.get(), 0, sul, on_timer, kPhaseTickUs);
    lws_cancel_service(impl.context.get());
  }
}

}  // namespace

Server::Impl::Impl(ServerOptions opts, Logger& logger)
    : options(std::move(opts)),
      log(logger),
      hub(QueueLimits{options.client_queue, options.client_queue_bytes}, *this) {
  started_us = now_unix_us();
  store_path = options.db == ":memory:" ? memory_store_uri() : options.db;
  // The writer opens (and migrates) first so the read-only connection finds the schema.
  Store write_store(store_path, Store::Mode::read_write, options.durability);
  check_log_kind(write_store, options);
  if (options.db != ":memory:") {  // an in-memory database has no WAL
    checkpointer = std::make_unique<WalCheckpointer>(store_path, options.durability);
    checkpointer->watch(write_store);
  }
  read_store = std::make_unique<Store>(store_path, Store::Mode::read_only);
  head = read_store->last_id();
  events_at_start = read_store->stats().events;  // the one count(*): health must not scan
  ping_timer.owner = this;
  phase_timer.owner = this;
  raise_fd_limit();
  create_context();
  // Started after the context exists: the other threads' only call into lws is this wake-up.
  if (options.nats) connect_jetstream();
  StoreWriterOptions writer_options;
  writer_options.retain_age_us = options.retain_age_us;
  writer_options.retain_events = options.retain_events;
  writer =
      std::make_unique<StoreWriter>(std::move(write_store), writer_options, [this] { wake(); });
  if (jetstream) {
    // The replica resumes after its own last id; a new node backfills from the stream's start.
    jetstream->follow(head,
                      [w = writer.get()](NewEvent event) { w->submit_wait(std::move(event), 0); });
  }
}

void Server::Impl::connect_jetstream() {
  jetstream = std::make_unique<JetStreamLog>(*options.nats, [this] { wake(); });
  const auto [first, last] = jetstream->stream_bounds();
  if (head > static_cast<EventId>(last)) {
    throw Error("database " + options.db + " is ahead of JetStream stream " + options.nats->stream +
                " (local id " + std::to_string(head) + ", stream last sequence " +
                std::to_string(last) +
                "): the stream was recreated; move the database aside to rebuild the replica");
  }
  log.info("jetstream", {{"stream", options.nats->stream},
                         {"first_seq", static_cast<std::int64_t>(first)},
                         {"last_seq", static_cast<std::int64_t>(last)},
                         {"replica_last_id", static_cast<std::int64_t>(head)}});
}

Server::Impl::~Impl() {
  if (context) {
    lws_sul_cancel(&ping_timer.sul);
    lws_sul_cancel(&phase_timer.sul);
  }
  if (writer) writer->close();  // wakes a consumer thread waiting for room in the queue
  jetstream.reset();            // no cnats callback runs after this
  writer.reset();               // joins the store thread first: its wake-up calls into the context
  context.reset();              // closes what is left; CLOSED callbacks still find `sessions`
}

void Server::Impl::create_context() {
  protocols[0] = {"http", http_callback, 0, 0, 0, nullptr, 0};
  protocols[1] = {"evstream", bus_callback, sizeof(Session*),  kRxBufferSize,
                  0,          nullptr,      kMaxCoalescedBytes};
  protocols[2] = {nullptr, nullptr, 0, 0, 0, nullptr, 0};
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
  info.port = options.port;
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
    const std::string reason = bind_failure(options.host, options.port);
    if (reason == "unknown error" && !options.cert_path.empty()) {
      throw Error("cannot start TLS with --cert " + options.cert_path + " and --key " +
                  options.key_path + " (check that both are readable PEM files that match)");
    }
    throw Error("cannot listen on " + options.host + ":" + std::to_string(options.port) + ": " +
                reason + " (choose another --port, or stop the process using it)");
  }
  vhost = lws_get_vhost_by_name(context.get(), "default");
  port = vhost != nullptr ? lws_get_vhost_listen_port(vhost) : options.port;
  lws_sul_schedule(context.get(), 0, &ping_timer.sul, on_timer, options.ping_interval_us);
}

std::string Server::Impl::url() const {
  const char* scheme = options.cert_path.empty() ? "ws" : "wss";
  return std::string(scheme) + "://" + options.host + ":" + std::to_string(port);
}

void Server::Impl::run() {
  log.info("listening", {{"url", url()}, {"db", options.db}});
  while (phase != Phase::done) {
    if (lws_service(context.get(), 0) < 0) break;
    const std::int64_t now = now_unix_us();
    if (phase == Phase::serving && stop_requested.load()) begin_drain();
    if (phase == Phase::draining &&
        ((log_drained() && publishers_idle()) || now > phase_deadline_us)) {
      begin_closing();
    }
    if (phase == Phase::closing && (sessions.empty() || now > phase_deadline_us)) {
      phase = Phase::done;
    }
  }
  log.info("stopped", {{"events_total", static_cast<std::int64_t>(head)}});
}

void Server::Impl::wake() {
  if (!wake_pending.exchange(true)) lws_cancel_service(context.get());
}

void Server::Impl::on_wake() {
  // Cleared before looking: whatever is queued after this point wakes the service thread again.
  wake_pending.store(false);
  deliver_committed();
}

void Server::Impl::deliver_committed() {
  record_store_samples();
  const std::int64_t now = now_unix_us();
  for (auto& committed : writer->take_committed()) {
    if (!committed.error && !committed.result.duplicate) broadcast(committed, now);
    if (!jetstream) acknowledge(committed);
  }
  if (!jetstream) return;
  // An ack waits until this node's replica has the event, so whoever was acked can read it here
  // at once; once serving ends, JetStream's word is enough.
  const std::optional<EventId> replicated =
      phase == Phase::serving ? std::optional<EventId>(head) : std::nullopt;
  for (auto& outcome : jetstream->take_outcomes(replicated)) {
    Committed committed{outcome.tag, {}, {outcome.id, 0, outcome.duplicate}, outcome.error};
    if (outcome.error) {
      unconfirmed(committed);
    } else {
      acknowledge(committed);
    }
  }
}

// JetStream did not confirm an event (NATS away, no quorum, timeout): it may or may not be
// stored, so no reply may claim either. The publisher's connection ends with 1013 after the
// replies owed for earlier frames, and the client resends from there under the same keys (the
// stream's duplicate window turns a resend of a stored event into a duplicate ack).
void Server::Impl::unconfirmed(const Committed& committed) {
  if (committed.tag & kHttpTagBit) on_http_committed(committed);
  auto found = sessions.find(committed.tag);
  if (found == sessions.end()) return;
  Session& publisher = *found->second;
  --publisher.in_flight;
  if (!publisher.replies_cut) {
    publisher.replies_cut = true;
    publisher.queue.cut_at_placeholder();
    log.warn("unconfirmed publish", {{"id", publisher.id}, {"error", *committed.error}});
    close_later(publisher, kCloseTryAgainLater, "try again later: JetStream did not confirm", true);
  }
  wake(publisher);
}

void Server::Impl::broadcast(Committed& committed, std::int64_t now) {
  ++counters.events_in;
  Record record{committed.result.id, std::move(committed.event.topic), committed.result.time_us,
                std::move(committed.event.data)};
  head = record.id;
  hub.publish(record, make_text_frame(encode_event(record), record.time_us));
  metrics.ingest_to_enqueue_us.record(now - record.time_us);
}

void Server::Impl::acknowledge(const Committed& committed) {
  if (!committed.error && committed.result.duplicate) ++counters.duplicates;
  if (committed.tag & kHttpTagBit) on_http_committed(committed);
  auto found = sessions.find(committed.tag);
  if (found == sessions.end()) return;
  Session& publisher = *found->second;
  if (publisher.replies_cut) {  // this frame's reply was cut with the unconfirmed one's
    --publisher.in_flight;
    wake(publisher);
    return;
  }
  publisher.queue.fill_placeholder(make_text_frame(
      committed.error ? encode_error("the event was not stored: " + *committed.error)
                      : encode_ack(committed.result.id, committed.result.duplicate)));
  --publisher.in_flight;
  wake(publisher);
}

StoreWriter::SubmitResult Server::Impl::submit(NewEvent event, std::uint64_t tag) {
  if (!jetstream) return writer->submit(std::move(event), tag);
  switch (jetstream->publish(event, tag)) {
    case JetStreamLog::PublishResult::ok:
      return StoreWriter::SubmitResult::ok;
    case JetStreamLog::PublishResult::full:
      return StoreWriter::SubmitResult::full;
    case JetStreamLog::PublishResult::closed:
      break;
  }
  return StoreWriter::SubmitResult::closed;
}

bool Server::Impl::log_drained() const {
  return jetstream ? jetstream->idle() : writer->drained();
}

void Server::Impl::on_ping_timer() {
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

void Server::Impl::begin_drain() {
  log.info("shutting down", {{"queued", static_cast<std::int64_t>(writer->queued())}});
  phase = Phase::draining;
  phase_deadline_us = now_unix_us() + kDrainTimeoutUs;
  if (jetstream) {
    jetstream->stop_intake();  // the replica keeps following until the server stops
  } else {
    writer->close();
  }
  lws_sul_schedule(context.get(), 0, &phase_timer.sul, on_timer, kPhaseTickUs);
}

bool Server::Impl::publishers_idle() const {
  if (!http_pending.empty()) return false;  // POST /api/events still waiting for the store
  for (const auto& [id, session] : sessions) {
    // Only acks still owed count: a publisher that keeps sending keeps getting "shutting down"
    // errors, and must not hold the server open. Queued replies leave before the close frame.
    if (session->role == Role::publisher && session->in_flight > 0) return false;
  }
  return true;
}

void Server::Impl::begin_closing() {
  phase = Phase::closing;
  phase_deadline_us = now_unix_us() + kCloseTimeoutUs;
  for (auto& [id, session] : sessions) close_later(*session, 1001, "going away", true);
}

Server::Server(ServerOptions options, Logger& logger)
    : m_impl(std::make_unique<Impl>(std::move(options), logger)) {}

Server::~Server() = default;

std::string Server::url() const {
  return m_impl->url();
}

void Server::run() {
  m_impl->run();
}

void Server::request_stop() {
  m_impl->stop_requested.store(true);
  if (auto* ctx = m_impl->context.get()) lws_cancel_service(ctx);
}

}  // namespace evstream
