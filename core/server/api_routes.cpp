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

std::string Server::Impl::health_json(bool full) {
  std::string out = "{\"status\":\"ok\",\"version\":\"" EVSTREAM_VERSION "\"";
  out += ",\"uptime_s\":" + std::to_string((now_unix_us() - started_us) / 1'000'000);
  if (!full) return out + "}";
  out += ",\"subscribers\":" + std::to_string(sessions.size() - publisher_sessions);
  out += ",\"publishers\":" + std::to_string(publisher_sessions);
  const std::int64_t events_total =
      events_at_start + static_cast<std::int64_t>(counters.events_in) - writer->retention_deleted();
  out += ",\"events_total\":" + std::to_string(events_total);
  out += ",\"last_event_id\":" + std::to_string(head);
  out += ",\"rss_bytes\":" + std::to_string(rss_bytes());
  out += ",\"db\":{\"path\":" + json_quote(options.db);
  out += ",\"bytes\":" + std::to_string(read_store->file_bytes());
  out += ",\"durability\":\"";
  out += options.durability == Durability::full ? "full" : "normal";
  out += "\",\"queue_depth\":" + std::to_string(writer->queued()) + "}";
  if (jetstream) out += ",\"nats\":" + nats_json();
  return out + "}";
}

std::uint64_t Server::Impl::replica_lag(const JetStreamStatus& nats) const {
  const auto replica = static_cast<std::uint64_t>(head);
  return nats.last_seq > replica ? nats.last_seq - replica : 0;
}

std::string Server::Impl::nats_json() const {
  const JetStreamStatus nats = jetstream->status();
  const auto replica = static_cast<std::uint64_t>(head);
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

void Server::Impl::record_store_samples() {
  for (const auto& sample : writer->take_batch_samples()) {
    metrics.store_commit_us.record(sample.commit_us);
    metrics.store_batch_events.record(static_cast<std::int64_t>(sample.events));
  }
  if (!jetstream) return;
  // The store thread retries a replica batch that failed until it commits (never a hole).
  const auto retries = writer->replica_retries();
  if (retries.failures > metrics.replica_commit_failures) {
    metrics.replica_commit_failures = retries.failures;
    log.error(
        "replica commit failed, retrying",
        {{"failures", static_cast<std::int64_t>(retries.failures)}, {"error", retries.last_error}});
  }
}

std::string Server::Impl::metrics_text() {
  record_store_samples();
  const std::uint64_t subscribers = sessions.size() - publisher_sessions;
  PromText prom;
  prom.family("evstream_connections", "gauge", "Open WebSocket connections by kind.");
  prom.sample("evstream_connections", "kind=\"subscriber\"", subscribers);
  prom.sample("evstream_connections", "kind=\"publisher\"", std::uint64_t{publisher_sessions});
  prom.family("evstream_connections_total", "counter", "WebSocket connections accepted by kind.");
  prom.sample("evstream_connections_total", "kind=\"subscriber\"",
              metrics.subscriber_connections_total);
  prom.sample("evstream_connections_total", "kind=\"publisher\"",
              metrics.publisher_connections_total);
  prom.counter("evstream_refused_connections_total",
               "WebSocket upgrades refused (bad path, shutting down, --max-clients, auth, origin).",
               counters.refused_connections);
  prom.counter("evstream_events_in_total", "Events stored and broadcast.", counters.events_in);
  if (jetstream) {
    prom.counter("evstream_replica_commit_failures_total",
                 "Commits of this node's replica that failed and were retried.",
                 metrics.replica_commit_failures);
  }
  prom.counter("evstream_http_events_in_total", "Events stored through POST /api/events.",
               metrics.http_events_in);
  prom.counter("evstream_duplicate_events_total",
               "Published events not stored again because their key was known.",
               counters.duplicates);
  prom.counter("evstream_rejected_frames_total", "Inbound WebSocket frames answered with an error.",
               counters.rejected_frames);
  prom.counter("evstream_messages_out_total", "WebSocket messages written to clients.",
               counters.messages_out);
  prom.counter("evstream_bytes_out_total", "WebSocket bytes written to clients.",
               counters.bytes_out);
  prom.counter("evstream_slow_consumer_closes_total",
               "Subscribers closed with 1008 because their queue passed its bound.",
               hub.slow_consumers());
  prom.counter("evstream_dead_client_closes_total",
               "Subscribers closed after 2 ping intervals without a message.",
               counters.dead_clients);
  prom.counter("evstream_http_requests_total", "HTTP requests answered or pending.",
               metrics.http_requests_total);
  prom.counter("evstream_unauthorized_total", "Requests and upgrades refused with 401.",
               metrics.http_unauthorized);
  prom.counter("evstream_forbidden_origin_total", "Requests and upgrades refused with 403.",
               metrics.forbidden_origins);
  prom.gauge("evstream_store_queue_depth", "Events waiting for a store transaction.",
             static_cast<double>(writer->queued()));
  prom.gauge("evstream_last_event_id", "Newest event id broadcast.", static_cast<double>(head));
  prom.histogram("evstream_store_commit_seconds", "Duration of one store transaction.",
                 metrics.store_commit_us, latency_bounds_us(), 1e6);
  prom.histogram("evstream_store_batch_events", "Events per store transaction.",
                 metrics.store_batch_events, batch_size_bounds(), 1.0);
  prom.histogram("evstream_ingest_to_enqueue_seconds",
                 "From accepting an event to queueing it for subscribers (includes the commit).",
                 metrics.ingest_to_enqueue_us, latency_bounds_us(), 1e6);
  prom.histogram(
      "evstream_delivery_seconds",
      "From accepting an event to writing it into a live subscriber's socket; one sample "
      "per event and subscriber.",
      metrics.delivery_us, latency_bounds_us(), 1e6);
  if (jetstream) {
    const JetStreamStatus nats = jetstream->status();
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
             static_cast<double>(started_us / 1'000'000));
  return prom.text();
}

void Server::Impl::get_events(HttpExchange& exchange) {
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

void Server::Impl::get_event(HttpExchange& exchange, std::string_view id_text) {
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

void Server::Impl::post_events(lws* wsi, HttpExchange& exchange) {
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
  exchange.tag = kHttpTagBit | next_http_tag++;
  // A body's events go to the store all or none (StoreWriter::submit_all); in cluster mode each
  // is its own JetStream publish, and one refused fails the request after those before it.
  StoreWriter::SubmitResult submitted = StoreWriter::SubmitResult::ok;
  if (phase != Phase::serving) {
    submitted = StoreWriter::SubmitResult::closed;
  } else if (jetstream) {
    // The replica's queue is the one that fills when this node falls behind the stream.
    if (writer->queued() + events.size() > StoreWriterOptions{}.max_queued_events) {
      submitted = StoreWriter::SubmitResult::full;
    }
  } else {
    const std::size_t count = events.size();
    submitted = writer->submit_all(events, exchange.tag);
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
  if (jetstream) {
    for (auto& event : events) {
      if (submit(std::move(event), exchange.tag) != StoreWriter::SubmitResult::ok) {
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

void Server::Impl::on_http_committed(const Committed& committed) {
  auto pending = http_pending.find(committed.tag);
  if (pending == http_pending.end()) return;  // the client left; the event is stored anyway
  auto found = http_exchanges.find(pending->second);
  if (found == http_exchanges.end()) return;
  HttpExchange& exchange = *found->second;
  if (committed.error && jetstream) {
    exchange.log_unavailable = true;
    exchange.store_error = "try again later: JetStream did not confirm the events (" +
                           *committed.error +
                           "); resend them with the same keys or Idempotency-Key";
  } else if (committed.error) {
    exchange.store_error = "the store could not save the events: " + *committed.error;
  } else {
    exchange.committed.emplace_back(committed.result.id, committed.result.duplicate);
    if (!committed.result.duplicate) ++metrics.http_events_in;
  }
  if (--exchange.awaiting > 0) return;
  finish_post(exchange);
  lws_callback_on_writable(pending->second);
}

void Server::Impl::finish_post(HttpExchange& exchange) {
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
