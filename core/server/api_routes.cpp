// The REST endpoints of serve (routed by http.cpp): events, health and metrics. Runs on the
// service thread; store reads are single small pages on the read-only connection.
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "core/server/api.hpp"
#include "core/server/server_impl.hpp"
#include "core/wire/json_text.hpp"

namespace evstream {

namespace {

std::int64_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::int64_t pages_total = 0;
  std::int64_t pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return pages_resident * sysconf(_SC_PAGESIZE);
}

void respond(HttpExchange& exchange, unsigned status, std::string body) {
  exchange.status = status;
  exchange.body_out = std::move(body);
  exchange.ready = true;
}

void respond_error(HttpExchange& exchange, unsigned status, std::string_view message) {
  respond(exchange, status, "{\"error\":" + json_quote(message) + "}");
}

}  // namespace

// Every figure below is for the whole server, whichever service thread answers: per-thread
// counts are summed (each thread writes its own, see Tally), and the fan-out counts each event
// once however many threads broadcast it.
std::string Service::health_json(bool full) {
  std::string out = "{\"status\":\"ok\",\"version\":\"" EVSTREAM_VERSION "\"";
  out += ",\"uptime_s\":" + std::to_string((now_unix_us() - server.started_us) / 1'000'000);
  if (!full) return out + "}";
  std::uint64_t open = 0;
  std::uint64_t publishers = 0;
  std::string threads = "[";
  for (const auto& service : server.services) {
    const std::uint64_t its_open = service->counters.open_sessions.get();
    const std::uint64_t its_publishers = service->counters.publishers.get();
    open += its_open;
    publishers += its_publishers;
    if (threads.size() > 1) threads += ',';
    threads += "{\"subscribers\":" + std::to_string(its_open - its_publishers) +
               ",\"publishers\":" + std::to_string(its_publishers) + "}";
  }
  out += ",\"subscribers\":" + std::to_string(open - publishers);
  out += ",\"publishers\":" + std::to_string(publishers);
  const std::int64_t events_total = server.events_at_start +
                                    static_cast<std::int64_t>(server.fanout->events_in()) -
                                    server.writer->retention_deleted();
  out += ",\"events_total\":" + std::to_string(events_total);
  out += ",\"last_event_id\":" + std::to_string(server.fanout->head());
  out += ",\"rss_bytes\":" + std::to_string(rss_bytes());
  out += ",\"threads\":" + threads + "]";
  out += ",\"db\":{\"path\":" + json_quote(options.db);
  out += ",\"bytes\":" + std::to_string(read_store->file_bytes());
  out += ",\"durability\":\"";
  out += options.durability == Durability::full ? "full" : "normal";
  out += "\",\"queue_depth\":" + std::to_string(server.writer->queued()) + "}";
  if (server.jetstream) out += ",\"nats\":" + nats_json();
  return out + "}";
}

std::uint64_t Service::replica_lag(const JetStreamStatus& nats) const {
  const auto replica = static_cast<std::uint64_t>(server.fanout->head());
  return nats.last_seq > replica ? nats.last_seq - replica : 0;
}

std::string Service::nats_json() const {
  const JetStreamStatus nats = server.jetstream->status();
  const auto replica = static_cast<std::uint64_t>(server.fanout->head());
  std::string out = "{\"connected\":";
  out += nats.connected ? "true" : "false";
  out += ",\"stream\":" + json_quote(nats.stream);
  out += ",\"replicas\":" + std::to_string(nats.replicas);
  out += ",\"stream_last_seq\":" + std::to_string(nats.last_seq);
  out += ",\"replica_last_id\":" + std::to_string(replica);
  out += ",\"lag\":" + std::to_string(replica_lag(nats));
  out += ",\"pending_acks\":" + std::to_string(nats.pending_acks);
  out += ",\"reconnects\":" + std::to_string(nats.reconnects);
  out += ",\"resubscribes\":" + std::to_string(nats.resubscribes);
  return out + "}";
}

std::string Service::metrics_text() {
  server.fanout->pump();  // the latest store samples (and anything committed) first
  const FanoutStats log_stats = server.fanout->stats();
  // Sums over the service threads of what each one counts for itself.
  const auto sum = [this](auto figure) {
    std::uint64_t total = 0;
    for (const auto& service : server.services) total += figure(*service).get();
    return total;
  };
  const std::uint64_t open = sum([](Service& s) -> Tally& { return s.counters.open_sessions; });
  const std::uint64_t publishers = sum([](Service& s) -> Tally& { return s.counters.publishers; });
  Histogram delivery_us;
  for (const auto& service : server.services) service->metrics.delivery_us.merge_into(delivery_us);
  PromText prom;
  prom.family("evstream_connections", "gauge", "Open WebSocket connections by kind.");
  prom.sample("evstream_connections", "kind=\"subscriber\"", open - publishers);
  prom.sample("evstream_connections", "kind=\"publisher\"", publishers);
  prom.family("evstream_connections_total", "counter", "WebSocket connections accepted by kind.");
  prom.sample("evstream_connections_total", "kind=\"subscriber\"",
              sum([](Service& s) -> Tally& { return s.metrics.subscriber_connections_total; }));
  prom.sample("evstream_connections_total", "kind=\"publisher\"",
              sum([](Service& s) -> Tally& { return s.metrics.publisher_connections_total; }));
  prom.family("evstream_thread_connections", "gauge",
              "Open connections of each service thread (serve --threads), by kind.");
  for (const auto& service : server.services) {
    const std::string thread = "thread=\"" + std::to_string(service->index) + "\",";
    const std::uint64_t its_publishers = service->counters.publishers.get();
    prom.sample("evstream_thread_connections", thread + "kind=\"subscriber\"",
                service->counters.open_sessions.get() - its_publishers);
    prom.sample("evstream_thread_connections", thread + "kind=\"publisher\"", its_publishers);
  }
  prom.counter("evstream_refused_connections_total",
               "WebSocket upgrades refused (bad path, shutting down, --max-clients, auth, origin).",
               sum([](Service& s) -> Tally& { return s.counters.refused_connections; }));
  prom.counter("evstream_events_in_total", "Events stored and broadcast.", log_stats.events_in);
  if (server.jetstream) {
    prom.counter("evstream_replica_commit_failures_total",
                 "Commits of this node's replica that failed and were retried.",
                 log_stats.replica_commit_failures);
  }
  prom.counter("evstream_http_events_in_total", "Events stored through POST /api/events.",
               sum([](Service& s) -> Tally& { return s.metrics.http_events_in; }));
  prom.counter("evstream_duplicate_events_total",
               "Published events not stored again because their key was known.",
               log_stats.duplicates);
  prom.counter("evstream_rejected_frames_total", "Inbound WebSocket frames answered with an error.",
               sum([](Service& s) -> Tally& { return s.counters.rejected_frames; }));
  prom.counter("evstream_messages_out_total", "WebSocket messages written to clients.",
               sum([](Service& s) -> Tally& { return s.counters.messages_out; }));
  prom.counter("evstream_bytes_out_total", "WebSocket bytes written to clients.",
               sum([](Service& s) -> Tally& { return s.counters.bytes_out; }));
  prom.counter("evstream_slow_consumer_closes_total",
               "Subscribers closed with 1008 because their queue passed its bound.",
               sum([](Service& s) -> Tally& { return s.counters.slow_consumers; }));
  prom.counter("evstream_dead_client_closes_total",
               "Subscribers closed after 2 ping intervals without a message.",
               sum([](Service& s) -> Tally& { return s.counters.dead_clients; }));
  prom.counter("evstream_http_requests_total", "HTTP requests answered or pending.",
               sum([](Service& s) -> Tally& { return s.metrics.http_requests_total; }));
  prom.counter("evstream_unauthorized_total", "Requests and upgrades refused with 401.",
               sum([](Service& s) -> Tally& { return s.metrics.http_unauthorized; }));
  prom.counter("evstream_forbidden_origin_total", "Requests and upgrades refused with 403.",
               sum([](Service& s) -> Tally& { return s.metrics.forbidden_origins; }));
  prom.gauge("evstream_store_queue_depth", "Events waiting for a store transaction.",
             static_cast<double>(server.writer->queued()));
  prom.gauge("evstream_last_event_id", "Newest event id broadcast.",
             static_cast<double>(server.fanout->head()));
  prom.histogram("evstream_store_commit_seconds", "Duration of one store transaction.",
                 log_stats.store_commit_us, latency_bounds_us(), 1e6);
  prom.histogram("evstream_store_batch_events", "Events per store transaction.",
                 log_stats.store_batch_events, batch_size_bounds(), 1.0);
  prom.histogram("evstream_ingest_to_enqueue_seconds",
                 "From accepting an event to handing it to the service threads, which queue it "
                 "for their subscribers (includes the commit).",
                 log_stats.ingest_to_handoff_us, latency_bounds_us(), 1e6);
  prom.histogram(
      "evstream_delivery_seconds",
      "From accepting an event to writing it into a live subscriber's socket; one sample "
      "per event and subscriber.",
      delivery_us, latency_bounds_us(), 1e6);
  if (server.jetstream) {
    const JetStreamStatus nats = server.jetstream->status();
    prom.gauge("evstream_nats_connected", "1 while connected to NATS (cluster mode).",
               nats.connected ? 1.0 : 0.0);
    prom.gauge("evstream_nats_stream_last_seq", "The JetStream stream's newest sequence, as seen.",
               static_cast<double>(nats.last_seq));
    prom.gauge("evstream_nats_replica_lag", "Events in the stream not yet in this node's replica.",
               static_cast<double>(replica_lag(nats)));
    prom.gauge("evstream_nats_pending_acks", "Publishes awaiting JetStream's ack or the replica.",
               static_cast<double>(nats.pending_acks));
    prom.counter("evstream_nats_reconnects_total", "Times the NATS connection came back.",
                 nats.reconnects);
    prom.counter(
        "evstream_nats_resubscribes_total",
        "Times a stalled stream consumer was replaced (the replica resumes from its last).",
        nats.resubscribes);
    prom.counter("evstream_nats_skipped_total",
                 "Stream messages that were not evstream events (not stored).", nats.skipped);
  }
  prom.gauge("process_resident_memory_bytes", "Resident memory size in bytes.",
             static_cast<double>(rss_bytes()));
  prom.gauge("process_start_time_seconds", "Start time of the process since the Unix epoch.",
             static_cast<double>(server.started_us / 1'000'000));
  return prom.text();
}

void Service::get_events(HttpExchange& exchange) {
  auto parsed = parse_events_query(exchange.args, now_unix_us());
  if (auto* error = std::get_if<std::string>(&parsed)) {
    respond_error(exchange, HTTP_STATUS_BAD_REQUEST, *error);
    return;
  }
  const Query& query = std::get<Query>(parsed);
  if (!query.filter.empty()) {
    // Runs on the service thread: the budget bounds what one page can cost the live subscribers.
    auto page = read_store->query_filtered(query, Store::ScanBudget{});
    std::optional<std::string> next;
    if (page.continue_from) next = events_url(next_page_query(query, *page.continue_from));
    respond(exchange, HTTP_STATUS_OK, events_page_json(page.records, next));
    return;
  }
  // One row more than asked tells whether anything follows, so the last page says null. The store
  // caps a page at kMaxQueryLimit, so a full-size page asks with a one-row probe instead.
  Query fetch = query;
  fetch.limit = std::min(query.limit + 1, kMaxQueryLimit);
  std::vector<Record> records = read_store->query(fetch);
  bool more = records.size() > static_cast<std::size_t>(query.limit);
  if (more) records.resize(static_cast<std::size_t>(query.limit));
  if (!more && fetch.limit == query.limit &&
      records.size() == static_cast<std::size_t>(query.limit)) {
    Query probe = next_page_query(query, records.back().id);
    probe.limit = 1;
    more = !read_store->query(probe).empty();
  }
  std::optional<std::string> next;
  if (more) next = events_url(next_page_query(query, records.back().id));
  respond(exchange, HTTP_STATUS_OK, events_page_json(records, next));
}

void Service::get_event(HttpExchange& exchange, std::string_view id_text) {
  const auto id = parse_event_id(id_text);
  if (!id) {
    respond_error(exchange, HTTP_STATUS_NOT_FOUND, "not found");
    return;
  }
  if (auto record = read_store->get(*id)) {
    respond(exchange, HTTP_STATUS_OK, record_json(*record));
  } else {
    respond_error(exchange, HTTP_STATUS_NOT_FOUND, "not found");
  }
}

void Service::post_events(lws* wsi, HttpExchange& exchange) {
  if (exchange.body_too_large) {
    respond_error(exchange, HTTP_STATUS_REQ_ENTITY_TOO_LARGE,
                  "body larger than " + std::to_string(exchange.body_limit) +
                      " bytes (--max-message-bytes; NDJSON bodies may be " +
                      std::to_string(kNdjsonBodyFactor) + " times that)");
    return;
  }
  exchange.ndjson = is_ndjson(exchange.content_type);
  auto decoded = decode_publish_body(exchange.body_in, exchange.ndjson, exchange.idempotency_key,
                                     options.max_message_bytes);
  exchange.body_in = {};
  if (auto* error = std::get_if<std::string>(&decoded)) {
    respond_error(exchange, HTTP_STATUS_BAD_REQUEST, *error);
    return;
  }
  auto& requests = std::get<std::vector<PublishRequest>>(decoded);
  std::vector<NewEvent> events;
  events.reserve(requests.size());
  std::int64_t accepted_us = 0;
  for (auto& request : requests) {
    // Distinct times, as when each was accepted on its own: since=/until= can tell them apart.
    accepted_us = std::max(now_unix_us(), accepted_us + 1);
    events.push_back(NewEvent{std::move(request.topic), std::move(request.data),
                              std::move(request.key), accepted_us});
  }
  exchange.tag = kHttpTagBit | next_id();
  // A body's events go to the store all or none (StoreWriter::submit_all); in cluster mode each
  // is its own JetStream publish, and one refused fails the request after those before it.
  StoreWriter::SubmitResult submitted = StoreWriter::SubmitResult::ok;
  if (phase != Phase::serving) {
    submitted = StoreWriter::SubmitResult::closed;
  } else if (server.jetstream) {
    // The replica's queue is the one that fills when this node falls behind the stream.
    if (server.writer->queued() + events.size() > StoreWriterOptions{}.max_queued_events) {
      submitted = StoreWriter::SubmitResult::full;
    }
  } else {
    const std::size_t count = events.size();
    submitted = server.writer->submit_all(events, exchange.tag);
    if (submitted == StoreWriter::SubmitResult::ok) exchange.awaiting = count;
  }
  if (submitted != StoreWriter::SubmitResult::ok) {
    exchange.tag = 0;
    exchange.headers_out.emplace_back("retry-after:", "1");
    respond_error(exchange, HTTP_STATUS_SERVICE_UNAVAILABLE,
                  submitted == StoreWriter::SubmitResult::closed
                      ? "server is shutting down; nothing was stored"
                      : "server busy: the store queue is full; retry shortly");
    return;
  }
  exchange.committed.reserve(events.size());
  if (server.jetstream) {
    for (auto& event : events) {
      if (server.submit(std::move(event), exchange.tag) != StoreWriter::SubmitResult::ok) {
        exchange.store_error = "the store refused part of the request";
        break;
      }
      ++exchange.awaiting;
    }
  }
  if (exchange.awaiting == 0) {
    finish_post(exchange);
    return;
  }
  http_pending[exchange.tag] = wsi;
}

void Service::on_http_committed(const PublishReply& reply) {
  auto pending = http_pending.find(reply.tag);
  if (pending == http_pending.end()) return;  // the client left; the event is stored anyway
  auto found = http_exchanges.find(pending->second);
  if (found == http_exchanges.end()) return;
  HttpExchange& exchange = *found->second;
  if (reply.unconfirmed) {
    exchange.log_unavailable = true;
    exchange.store_error = "try again later: JetStream did not confirm the events (" +
                           *reply.error + "); resend them with the same keys or Idempotency-Key";
  } else if (reply.error) {
    exchange.store_error = "the store could not save the events: " + *reply.error;
  } else {
    exchange.committed.emplace_back(reply.result.id, reply.result.duplicate);
    if (!reply.result.duplicate) ++metrics.http_events_in;
  }
  if (--exchange.awaiting > 0) return;
  finish_post(exchange);
  lws_callback_on_writable(pending->second);
}

void Service::finish_post(HttpExchange& exchange) {
  if (exchange.log_unavailable) {
    exchange.headers_out.emplace_back("retry-after:", "1");
    respond_error(exchange, HTTP_STATUS_SERVICE_UNAVAILABLE, exchange.store_error);
    return;
  }
  if (!exchange.store_error.empty()) {
    respond_error(exchange, HTTP_STATUS_INTERNAL_SERVER_ERROR, exchange.store_error);
    return;
  }
  std::string body;
  if (!exchange.ndjson) {
    const auto [id, duplicate] = exchange.committed.front();
    body = "{\"id\":" + std::to_string(id) + (duplicate ? ",\"duplicate\":true}" : "}");
    exchange.headers_out.emplace_back("location:", "/api/events/" + std::to_string(id));
  } else {
    std::size_t duplicates = 0;
    body = "{\"ids\":[";
    for (std::size_t i = 0; i < exchange.committed.size(); ++i) {
      if (i > 0) body += ',';
      body += std::to_string(exchange.committed[i].first);
      duplicates += exchange.committed[i].second;
    }
    body += ']';
    if (duplicates > 0) body += ",\"duplicates\":" + std::to_string(duplicates);
    body += '}';
  }
  respond(exchange, 201, std::move(body));  // lws 4.1 has no HTTP_STATUS_CREATED
}

}  // namespace evstream
