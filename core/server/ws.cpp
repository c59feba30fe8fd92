// The WebSocket half of serve: /ws/events (subscribers) and /ws/publish (publishers) on one lws
// protocol, routed by path. Everything here runs on the connection's service thread.
#include <charconv>
#include <cstdint>
#include <cstring>

#include "core/server/server_impl.hpp"
#include "core/wire/json_text.hpp"
#include "core/wire/protocol.hpp"

namespace evstream {

namespace {

constexpr std::size_t kPublisherWindow = 1024;    // unacked events per publisher before rx pauses
constexpr unsigned kSlowCloseGraceSecs = 2;       // a choked socket may never take the close frame
constexpr unsigned kOversizeCloseGraceSecs = 10;  // to commit and ack what came before

std::optional<std::int64_t> parse_count(std::string_view text) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 0) return std::nullopt;
  return value;
}

}  // namespace

int Service::on_confirm_upgrade(lws* wsi) {
  const std::string path = header(wsi, WSI_TOKEN_GET_URI);
  unsigned status = 0;
  const char* message = nullptr;
  if (path != "/ws/events" && path != "/ws/publish") {
    status = HTTP_STATUS_NOT_FOUND;
    message = "unknown WebSocket path: use /ws/events or /ws/publish";
  } else if (phase != Phase::serving) {
    status = HTTP_STATUS_SERVICE_UNAVAILABLE;
    message = "server is shutting down";
  } else if (server.open_sessions() >= options.max_clients) {
    status = HTTP_STATUS_SERVICE_UNAVAILABLE;
    message = "too many clients (--max-clients reached)";
  } else if (!origin_allowed(wsi, header(wsi, WSI_TOKEN_ORIGIN))) {
    ++metrics.forbidden_origins;
    status = HTTP_STATUS_FORBIDDEN;
    message = "origin not allowed (see --allow-origin)";
  } else if (!authorized(path == "/ws/publish" ? Access::publish : Access::read,
                         request_token(wsi))) {
    ++metrics.http_unauthorized;
    status = HTTP_STATUS_UNAUTHORIZED;
    message = "missing or wrong token: send Authorization: Bearer TOKEN or ?token=TOKEN";
  }
  if (status == 0) return 0;
  ++counters.refused_connections;
  log.warn("refused",
           {{"path", path}, {"status", static_cast<std::int64_t>(status)}, {"reason", message}});
  write_refusal(wsi, status, message);
  return 1;
}

Session& Service::add_session(lws* wsi, Role role, std::string path) {
  auto owned = std::make_unique<Session>();
  Session& session = *owned;
  session.id = next_id();
  session.wsi = wsi;
  session.path = std::move(path);
  session.role = role;
  char peer[64] = "";
  lws_get_peer_simple(wsi, peer, sizeof peer);
  session.peer = peer;
  session.connected_us = session.last_rx_us = now_unix_us();
  sessions.emplace(session.id, std::move(owned));
  ++counters.open_sessions;
  if (session.role == Role::publisher) ++counters.publishers;
  ++counters.connections_total;
  ++(session.role == Role::publisher ? metrics.publisher_connections_total
                                     : metrics.subscriber_connections_total);
  log.info("connect", {{"id", session.id}, {"peer", session.peer}, {"path", session.path}});
  return session;
}

int Service::on_established(lws* wsi, Session** slot) {
  std::string path = header(wsi, WSI_TOKEN_GET_URI);
  const Role role = path == "/ws/publish" ? Role::publisher : Role::subscriber;
  Session& session = add_session(wsi, role, std::move(path));
  *slot = &session;
  if (session.role != Role::subscriber) return 0;
  // Query arguments are read now: headers are gone after ESTABLISHED returns.
  SubscriptionRequest request = parse_subscription(query_args(wsi));
  if (!request.problem.empty()) {
    reply(session, encode_ping(now_unix_us(), std::to_string(session.id), head));
    reply(session, encode_error(request.problem));
    close_later(session, 1008, "bad request", true);
    return 0;
  }
  start_subscription(session, std::move(request));
  return 0;
}

// topic=/since=/since_time=/last=/where=; a bad one is said in `problem`.
SubscriptionRequest Service::parse_subscription(
    const std::vector<std::pair<std::string, std::string>>& args) {
  SubscriptionRequest request;
  std::string& problem = request.problem;
  Filter where;
  for (const auto& [name, value] : args) {
    if (name == "topic") {
      if (auto error = topic_error(value); !error.empty()) problem = "bad topic=: " + error;
      request.topics.push_back(value);
    } else if (name == "since") {
      request.since = parse_count(value);
      if (!request.since) problem = "bad since=" + value + ": expected an event id (0 or more)";
    } else if (name == "since_time") {
      const auto time = parse_rfc3339(value);
      if (!time) problem = "bad since_time=" + value + ": expected an RFC 3339 time";
      if (time) request.since = read_store->cursor_for_time(*time);
    } else if (name == "last") {
      request.last = parse_count(value);
      if (!request.last) problem = "bad last=" + value + ": expected a count (0 or more)";
    } else if (name == "where") {
      auto clause = parse_filter_clause(value);
      if (auto* error = std::get_if<FilterError>(&clause)) {
        problem = error->describe();
      } else {
        where.clauses.push_back(std::move(std::get<FilterClause>(clause)));
      }
    }
  }
  if (!where.empty()) request.filter = std::make_shared<const Filter>(std::move(where));
  if (problem.empty() && request.since && request.last) {
    problem = "use either since= or last=, not both";
  }
  return request;
}

// Greets the subscriber and queues its first catch-up page.
void Service::start_subscription(Session& session, SubscriptionRequest request) {
  session.topics = std::move(request.topics);
  session.filter = std::move(request.filter);
  const auto since = request.since;
  const auto last = request.last;
  reply(session, encode_ping(now_unix_us(), std::to_string(session.id), head));
  // Another thread may have acked an event this one has not broadcast yet: the fan-out's head
  // is the newest id stored and handed out. A cursor past this thread's head then goes live at
  // once, and Hub::publish skips what arrives here at or below it.
  const EventId newest = std::max(head, server.fanout->head());
  if (since && *since > newest) {
    reply(session, encode_error("since=" + std::to_string(*since) +
                                " is above the newest stored id " + std::to_string(newest) +
                                " (was the store reset?); sending live events from here"));
  }
  if (since) {
    session.cursor = std::min<EventId>(*since, newest);
  } else if (last && (!session.topics.empty() || session.filter)) {
    Hub::seek_last(session, *last, head);  // walked back page by page: never one long query
  } else if (last) {
    // Ids have no holes (only the oldest rows are ever deleted), so the last N follow head - N.
    session.cursor = std::max<EventId>(0, head - *last);
  } else {
    session.cursor = head;
  }
  hub.catch_up(session, *read_store, head);
}

int Service::on_receive(Session& session, const char* in, std::size_t len) {
  // Closing: what is queued goes out, then the close frame; new frames would only delay it.
  if (session.close_code != 0) return 0;
  session.last_rx_us = now_unix_us();
  if (session.rx.empty()) session.rx_binary = lws_frame_is_binary(session.wsi) != 0;
  if (session.rx.size() + len > options.max_message_bytes) {
    ++counters.rejected_frames;
    session.rx = {};
    // Acks still owed for earlier frames go out before the close frame: those events are stored.
    close_later(session, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
                "message larger than " + std::to_string(options.max_message_bytes) + " bytes",
                true);
    lws_set_timeout(session.wsi, PENDING_TIMEOUT_USER_OK, kOversizeCloseGraceSecs);
    return 0;
  }
  session.rx.append(in, len);
  if (!lws_is_final_fragment(session.wsi) || lws_remaining_packet_payload(session.wsi) > 0) {
    return 0;
  }
  std::string message = std::move(session.rx);
  session.rx = {};
  if (session.rx_binary) {
    ++counters.rejected_frames;
    reply(session, encode_error("binary frames are not supported; send JSON as text frames"));
  } else if (session.role == Role::subscriber) {
    handle_subscriber_message(session, message);
  } else {
    handle_publish(session, message);
  }
  return 0;
}

void Service::handle_subscriber_message(Session& session, std::string_view text) {
  const auto message = decode_subscriber_message(text);
  if (const auto* error = std::get_if<std::string>(&message)) {
    ++counters.rejected_frames;
    reply(session, encode_error(*error));
  }
}

void Service::handle_publish(Session& session, std::string_view text) {
  auto decoded = decode_publish(text);
  if (const auto* error = std::get_if<std::string>(&decoded)) {
    ++counters.rejected_frames;
    reply(session, encode_error(*error));
    return;
  }
  auto& request = std::get<PublishRequest>(decoded);
  NewEvent event{std::move(request.topic), std::move(request.data), std::move(request.key),
                 now_unix_us()};
  switch (server.submit(std::move(event), session.id)) {
    case StoreWriter::SubmitResult::ok:
      session.queue.push_placeholder();
      if (++session.in_flight >= kPublisherWindow && !session.rx_paused) {
        session.rx_paused = true;
        lws_rx_flow_control(session.wsi, 0);
      }
      break;
    case StoreWriter::SubmitResult::full:
      ++counters.rejected_frames;
      reply(session, encode_error("server busy: the store queue is full; retry shortly"));
      break;
    case StoreWriter::SubmitResult::closed:
      ++counters.rejected_frames;
      reply(session, encode_error("server is shutting down; the event was not stored, retry"));
      break;
  }
}

void Service::reply(Session& session, std::string_view payload) {
  const bool was_ready = session.queue.front_ready();
  session.queue.push(make_text_frame(payload));
  if (!was_ready) wake(session);
}

void Service::close_later(Session& session, int code, std::string reason, bool after_drain) {
  if (session.close_code != 0) return;
  session.close_code = code;
  session.close_reason = std::move(reason);
  session.close_when_drained = after_drain;
  hub.remove(session);
  lws_callback_on_writable(session.wsi);
}

void Service::wake(Subscriber& subscriber) {
  auto& session = static_cast<Session&>(subscriber);
  if (taking_handoffs && !session.http_stream && !session.catching_up()) {
    // A publisher's acks come in a row: list it once for them.
    if (woken.empty() || woken.back() != &session) woken.push_back(&session);
  } else {
    lws_callback_on_writable(session.wsi);
  }
}

void Service::overflowed(Subscriber& subscriber) {
  auto& session = static_cast<Session&>(subscriber);
  ++counters.slow_consumers;
  log.warn("slow consumer",
           {{"id", session.id},
            {"peer", session.peer},
            {"limit_messages", static_cast<std::int64_t>(options.client_queue)},
            {"limit_bytes", static_cast<std::int64_t>(options.client_queue_bytes)}});
  close_later(session, LWS_CLOSE_STATUS_POLICY_VIOLATION, "slow consumer", false);
  lws_set_timeout(session.wsi, PENDING_TIMEOUT_USER_OK, kSlowCloseGraceSecs);
}

int Service::on_writeable(Session& session) {
  if (session.close_sent) return 0;
  // Drained means no placeholders either: every ack owed has been written.
  if (session.close_code != 0 && session.close_when_drained && session.queue.empty()) {
    // lws 4.1 drops the TCP connection right after its own close frame, so a peer still sending
    // gets a reset that destroys the close frame and the replies before it. Send the close
    // ourselves and wait (bounded) for the peer's, discarding what it sends until then.
    std::string payload{static_cast<char>(0x88), 0, static_cast<char>(session.close_code >> 8),
                        static_cast<char>(session.close_code & 0xff)};
    payload += session.close_reason.substr(0, 123);
    payload[1] = static_cast<char>(payload.size() - 2);  // a complete unmasked close frame
    std::vector<unsigned char> buf(LWS_PRE + payload.size());
    std::memcpy(buf.data() + LWS_PRE, payload.data(), payload.size());
    lws_write(session.wsi, buf.data() + LWS_PRE, payload.size(), LWS_WRITE_RAW);
    session.close_sent = true;
    lws_set_timeout(session.wsi, PENDING_TIMEOUT_CLOSE_ACK, 2);
    return 0;
  }
  if (session.close_code != 0 && !session.close_when_drained) {
    lws_close_reason(session.wsi, static_cast<lws_close_status>(session.close_code),
                     reinterpret_cast<unsigned char*>(session.close_reason.data()),
                     session.close_reason.size());
    return -1;
  }
  if (session.catching_up() && session.queue.size() < options.client_queue / 4) {
    hub.catch_up(session, *read_store, head);
  }
  if (!session.queue.front_ready()) {
    // A page walked back for last= queues nothing: come back for the next one.
    if (session.catching_up() && session.queue.empty()) lws_callback_on_writable(session.wsi);
    return 0;
  }
  if (!write_ready_frames(session)) {
    session.end_reason = "send failed";
    return -1;
  }
  if (session.queue.front_ready() || session.catching_up() || session.close_code != 0) {
    lws_callback_on_writable(session.wsi);
  }
  return 0;
}

// Coalesce queued frames into one raw write: server frames are unmasked, so their bytes are
// complete as built and one syscall can carry many of them. False when the socket failed.
bool Service::write_ready_frames(Session& session) {
  std::size_t total = 0;
  std::size_t count = 0;
  scratch.resize(LWS_PRE);
  scratch_accepted.clear();
  while (session.queue.front_ready()) {
    const Frame& frame = *session.queue.front();
    if (count > 0 && total + frame.size() > kMaxCoalescedBytes) break;
    scratch.insert(scratch.end(), frame.bytes.begin(), frame.bytes.end());
    if (frame.accepted_us != 0) scratch_accepted.push_back(frame.accepted_us);
    total += frame.size();
    ++count;
    session.queue.pop();
  }
  if (count == 0) return true;
  // lws keeps what the socket did not take and sends it before anything else.
  const int written = lws_write(session.wsi, scratch.data() + LWS_PRE, total, LWS_WRITE_RAW);
  if (written < static_cast<int>(total)) return false;
  record_sent(count, total);
  if (session.rx_paused && session.in_flight < kPublisherWindow / 2) {
    session.rx_paused = false;
    lws_rx_flow_control(session.wsi, 1);
  }
  return true;
}

// Frames queued while a hand-off was taken go out right after it, from the loop itself: a
// writable round per connection (a poll over every socket, then one callback each) would add
// its cost and its delay to every delivery. Only a connection whose socket took everything so far
// is written this way; any other waits for lws to say it is writable, as before.
void Service::flush_woken() {
  for (Session* session : woken) {
    if (session->close_code != 0 || lws_partial_buffered(session->wsi)) {
      lws_callback_on_writable(session->wsi);
      continue;
    }
    if (!write_ready_frames(*session)) {
      session->end_reason = "send failed";
      lws_set_timeout(session->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
      continue;
    }
    if (session->queue.front_ready()) lws_callback_on_writable(session->wsi);
  }
  woken.clear();
}

// One write to a subscriber carried `messages` messages in `bytes` bytes; the live broadcasts
// among them (their acceptance times in scratch_accepted) are delivered now.
void Service::record_sent(std::size_t messages, std::size_t bytes) {
  counters.messages_out += messages;
  counters.bytes_out += bytes;
  if (scratch_accepted.empty()) return;
  metrics.delivery_us.record_ages(scratch_accepted, now_unix_us());
}

void Service::on_peer_close(Session& session, const unsigned char* in, std::size_t len) {
  int code = 1005;
  if (len >= 2) code = (in[0] << 8) | in[1];
  session.end_reason = "client closed (" + std::to_string(code) + ")";
}

void Service::on_closed(Session& session) {
  hub.remove(session);
  std::string reason = session.close_code != 0       ? session.close_reason
                       : !session.end_reason.empty() ? session.end_reason
                                                     : "connection lost";
  log.info("disconnect", {{"id", session.id},
                          {"peer", session.peer},
                          {"path", session.path},
                          {"reason", reason},
                          {"duration_ms", (now_unix_us() - session.connected_us) / 1000}});
  --counters.open_sessions;
  if (session.role == Role::publisher) --counters.publishers;
  sessions.erase(session.id);
}

int bus_callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, std::size_t len) {
  auto** slot = static_cast<Session**>(user);
  Session* session = slot != nullptr ? *slot : nullptr;
  try {
    switch (reason) {
      case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return service_of(wsi).on_confirm_upgrade(wsi);
      case LWS_CALLBACK_ESTABLISHED:
        return service_of(wsi).on_established(wsi, slot);
      case LWS_CALLBACK_RECEIVE:
        return session ? service_of(wsi).on_receive(*session, static_cast<const char*>(in), len)
                       : -1;
      case LWS_CALLBACK_SERVER_WRITEABLE:
        return session ? service_of(wsi).on_writeable(*session) : 0;
      case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (session && session->close_sent) return -1;  // the answer to our close: done
        if (session) {
          service_of(wsi).on_peer_close(*session, static_cast<const unsigned char*>(in), len);
        }
        return 0;
      case LWS_CALLBACK_CLOSED:
        if (session) service_of(wsi).on_closed(*session);
        if (slot) *slot = nullptr;
        return 0;
      case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        // Delivered to every protocol through a fake wsi without pss; never return non-zero.
        service_of(wsi).on_wake();
        return 0;
      default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
  } catch (const std::exception& e) {
    // Nothing may throw through lws: drop this one connection and keep serving everyone else.
    service_of(wsi).log.error("internal error", {{"what", e.what()}});
    return reason == LWS_CALLBACK_EVENT_WAIT_CANCELLED ? 0 : -1;
  }
}

}  // namespace evstream
