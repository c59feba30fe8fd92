// The process-wide part of serve: opening the store, the store thread and (cluster mode) the
// JetStream log, the fan-out from them to the service threads, starting and joining those
// threads, and stopping. One service thread's loop is service.cpp.
#include "core/server/server.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <exception>
#include <mutex>
#include <thread>

#include "core/server/server_impl.hpp"
#include "core/util/error.hpp"

namespace evstream {

namespace {

// Lets a 10k-subscriber server use every fd the hard limit allows.
void raise_fd_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
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

}  // namespace

Server::Impl::Impl(ServerOptions opts, Logger& logger) : options(std::move(opts)), log(logger) {
  options.threads = std::max<std::size_t>(options.threads, 1);
  started_us = now_unix_us();
  store_path = options.db == ":memory:" ? memory_store_uri() : options.db;
  // The writer opens (and migrates) first so the read-only connections find the schema.
  Store write_store(store_path, Store::Mode::read_write, options.durability);
  check_log_kind(write_store, options);
  const StoreStats stats = write_store.stats();  // the one count(*): health must not scan
  events_at_start = stats.events;
  fanout = std::make_unique<Fanout>(log, stats.last_id);
  if (options.db != ":memory:") {  // an in-memory database has no WAL
    checkpointer = std::make_unique<WalCheckpointer>(store_path, options.durability);
    checkpointer->watch(write_store);
  }
  raise_fd_limit();
  std::vector<ListenSocket> listeners;
  if (options.threads > 1) {
    listeners = open_shared_listeners(options.host, options.port, options.threads);
  }
  for (std::size_t i = 0; i < options.threads; ++i) {
    std::optional<ListenSocket> listener;
    if (!listeners.empty()) listener = std::move(listeners[i]);
    services.push_back(std::make_unique<Service>(*this, i, std::move(listener)));
  }
  // Started after the contexts exist: the other threads' only call into lws is the wake-up.
  if (options.nats) connect_jetstream(stats.last_id);
  StoreWriterOptions writer_options;
  writer_options.retain_age_us = options.retain_age_us;
  writer_options.retain_events = options.retain_events;
  writer = std::make_unique<StoreWriter>(std::move(write_store), writer_options,
                                         [this] { fanout->pump(); });
  std::vector<Inbox*> inboxes;
  for (auto& service : services) inboxes.push_back(&service->inbox);
  fanout->start(*writer, jetstream.get(), std::move(inboxes));
  if (jetstream) {
    // The replica resumes after its own last id; a new node backfills from the stream's start.
    try {
      jetstream->follow(stats.last_id, [w = writer.get()](NewEvent event) {
        w->submit_wait(std::move(event), 0);
      });
    } catch (...) {
      fanout->stop();  // members go in reverse order: the writer would still hand out
      throw;
    }
  }
}

void Server::Impl::connect_jetstream(EventId head) {
  jetstream = std::make_unique<JetStreamLog>(*options.nats, [this] { fanout->pump(); });
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
  fanout->stop();               // nothing more reaches the services' inboxes
  if (writer) writer->close();  // wakes a consumer thread waiting for room in the queue
  jetstream.reset();            // no cnats callback runs after this
  writer.reset();               // joins the store thread
  services.clear();             // closes what is left; CLOSED callbacks still find their sessions
}

std::string Server::Impl::url() const {
  const char* scheme = options.cert_path.empty() ? "ws" : "wss";
  return std::string(scheme) + "://" + options.host + ":" + std::to_string(services.front()->port);
}

void Server::Impl::run() {
  log.info("listening", {{"url", url()},
                         {"db", options.db},
                         {"threads", static_cast<std::int64_t>(services.size())}});
  std::mutex failure_mutex;
  std::exception_ptr failure;
  const auto serve = [&](Service& service) {
    try {
      service.run();
    } catch (...) {
      // Nothing should get here (callbacks catch their own); if it does, every thread stops.
      {
        std::lock_guard lock(failure_mutex);
        if (!failure) failure = std::current_exception();
      }
      request_stop();
    }
  };
  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < services.size(); ++i) {
    threads.emplace_back([&serve, &service = *services[i]] { serve(service); });
  }
  serve(*services.front());
  for (auto& thread : threads) thread.join();
  log.info("stopped", {{"events_total", static_cast<std::int64_t>(fanout->head())}});
  if (failure) std::rethrow_exception(failure);
}

void Server::Impl::request_stop() {
  stop_requested.store(true);
  for (auto& service : services) service->wake();
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

void Server::Impl::stop_intake() {
  if (jetstream) {
    jetstream->stop_intake();  // the replica keeps following until the server stops
  } else {
    writer->close();
  }
  fanout->stop_serving();
  fanout->pump();  // acks that waited for the replica go now
}

std::size_t Server::Impl::open_sessions() const {
  std::size_t open = 0;
  for (const auto& service : services) open += service->counters.open_sessions.get();
  return open;
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
  m_impl->request_stop();
}

}  // namespace evstream
