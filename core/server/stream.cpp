// GET /api/events/stream: a subscriber over plain HTTP, for clients without WebSocket (curl -N,
// EventSource, log shippers). The response is a Session in the hub like a /ws/events connection,
// with the same parameters, queue bounds, slow-consumer policy and order; only the bytes differ
// (SSE or NDJSON, core/wire/http_stream). It has no length and ends when the connection does.
// Everything here runs on the connection's service thread.
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/server/server_impl.hpp"
#include "core/wire/protocol.hpp"

namespace evstream {

std::optional<Service::Refusal> Service::open_stream(lws* wsi, HttpExchange& exchange) {
  std::optional<std::string_view> format_arg;
  for (const auto& [name, value] : exchange.args) {
    if (name == "format") format_arg = value;
  }
  const auto format = choose_stream_format(format_arg, header(wsi, WSI_TOKEN_HTTP_ACCEPT));
  if (!format) {
    return Refusal{HTTP_STATUS_BAD_REQUEST,
                   "bad format=" + std::string(*format_arg) + ": use sse or ndjson"};
  }
  // A browser reconnects an EventSource with the URL it first opened plus Last-Event-ID: the id
  // says where to resume, whatever since= or last= the URL asked for the first time.
  auto args = exchange.args;
  const std::string resume = custom_header(wsi, "last-event-id:");
  if (!resume.empty()) {
    std::erase_if(args, [](const auto& arg) {
      return arg.first == "since" || arg.first == "since_time" || arg.first == "last";
    });
    args.emplace_back("since", resume);
  }
  SubscriptionRequest request = parse_subscription(args);
  if (!resume.empty() && !request.since) {
    request.problem = "bad Last-Event-ID " + resume + ": expected an event id";
  }
  if (!request.problem.empty()) return Refusal{HTTP_STATUS_BAD_REQUEST, request.problem};
  if (phase != Phase::serving) {
    return Refusal{HTTP_STATUS_SERVICE_UNAVAILABLE, "server is shutting down"};
  }
  if (server.open_sessions() >= options.max_clients) {
    return Refusal{HTTP_STATUS_SERVICE_UNAVAILABLE, "too many clients (--max-clients reached)"};
  }
  if (!write_stream_headers(wsi, exchange, *format)) {
    return Refusal{HTTP_STATUS_INTERNAL_SERVER_ERROR, "cannot write the response headers"};
  }
  // Everything needed from the request is copied: give its header storage back (a stream holds
  // its connection for hours) and cancel lws' timeouts. (lws_http_mark_sse does the same, but
  // lws 4.1 logs an error from it on HTTP/1.)
  lws_http_headers_detach(wsi);
  lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
  Session& session = add_session(wsi, Role::subscriber, exchange.path);
  session.http_stream = *format;
  exchange.stream_session = session.id;
  exchange.ready = true;
  start_subscription(session, std::move(request));
  return std::nullopt;
}

bool Service::write_stream_headers(lws* wsi, HttpExchange& exchange, StreamFormat format) {
  std::vector<unsigned char> buf(LWS_PRE + 2048);
  unsigned char* start = buf.data() + LWS_PRE;
  unsigned char* p = start;
  unsigned char* end = buf.data() + buf.size() - 1;
  const std::string content_type(stream_content_type(format));
  // No length: lws answers "connection: close", and the body runs until either side ends it.
  if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, content_type.c_str(),
                                  LWS_ILLEGAL_HTTP_CONTENT_LEN, &p, end)) {
    return false;
  }
  exchange.headers_out.emplace_back("cache-control:", "no-cache");
  exchange.headers_out.emplace_back("x-accel-buffering:", "no");  // nginx: pass each event on
  for (const auto& [name, value] : exchange.headers_out) {
    if (lws_add_http_header_by_name(wsi, reinterpret_cast<const unsigned char*>(name.c_str()),
                                    reinterpret_cast<const unsigned char*>(value.data()),
                                    static_cast<int>(value.size()), &p, end)) {
      return false;
    }
  }
  return lws_finalize_write_http_header(wsi, start, &p, end) == 0;
}

int Service::on_stream_writeable(lws* wsi, Session& session) {
  const StreamFormat format = *session.http_stream;
  std::string& body = stream_out;  // reused: no allocation per write once it has grown
  body.clear();
  // Ended by the server: a slow consumer's queue was dropped; at shutdown, what was queued went
  // first. The last words say why; the client resumes with since= / Last-Event-ID.
  if (session.close_code != 0 && (!session.close_when_drained || session.queue.empty())) {
    append_stream_end(body, format, session.close_reason + ": reconnect to resume");
    scratch.resize(LWS_PRE + body.size());
    std::memcpy(scratch.data() + LWS_PRE, body.data(), body.size());
    lws_write(wsi, scratch.data() + LWS_PRE, body.size(), LWS_WRITE_HTTP_FINAL);
    return -1;
  }
  if (session.catching_up() && session.queue.size() < options.client_queue / 4) {
    hub.catch_up(session, *read_store, head);
  }
  if (!session.queue.front_ready()) {
    if (session.catching_up() && session.queue.empty()) lws_callback_on_writable(wsi);
    return 0;
  }
  std::size_t count = 0;
  scratch_accepted.clear();
  while (session.queue.front_ready() && (count == 0 || body.size() < kMaxCoalescedBytes)) {
    const Frame& frame = *session.queue.front();
    append_stream_message(body, format, frame_payload(frame));
    if (frame.accepted_us != 0) scratch_accepted.push_back(frame.accepted_us);
    ++count;
    session.queue.pop();
  }
  scratch.resize(LWS_PRE + body.size());
  std::memcpy(scratch.data() + LWS_PRE, body.data(), body.size());
  if (lws_write(wsi, scratch.data() + LWS_PRE, body.size(), LWS_WRITE_HTTP) <
      static_cast<int>(body.size())) {
    session.end_reason = "send failed";
    return -1;
  }
  record_sent(count, body.size());
  if (session.queue.front_ready() || session.catching_up() || session.close_code != 0) {
    lws_callback_on_writable(wsi);
  }
  return 0;
}

// lws does not read a stream's socket once the response has started, so a client that hung up
// shows only when a write fails. A peek (called at each ping) sees its FIN at once.
bool stream_peer_gone(lws* wsi) {
  const int fd = lws_get_socket_fd(wsi);
  if (fd < 0) return true;
  char byte = 0;
  const ssize_t n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

}  // namespace evstream
