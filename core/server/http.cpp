// The HTTP half of serve, on the same port and context as the WebSockets: request capture, auth,
// origin checks and CORS, routing, and writing responses. The endpoints themselves are in
// api_routes.cpp. Everything here runs on the connection's service thread.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "core/server/api.hpp"
#include "core/server/server_impl.hpp"
#include "core/wire/json_text.hpp"

namespace evstream {

namespace {

constexpr std::string_view kEventsPath = "/api/events";
constexpr std::string_view kStreamPath = "/api/events/stream";

void respond(HttpExchange& exchange, unsigned status, std::string body,
             std::string_view content_type = "application/json") {
  exchange.status = status;
  exchange.body_out = std::move(body);
  exchange.content_type_out = content_type;
  exchange.ready = true;
}

void respond_error(HttpExchange& exchange, unsigned status, std::string_view message) {
  respond(exchange, status, "{\"error\":" + json_quote(message) + "}");
}

bool method_allowed(HttpExchange& exchange, std::string_view allow) {
  const bool ok = allow.find(exchange.method) != std::string_view::npos;
  if (!ok) {
    exchange.headers_out.emplace_back("allow:", std::string(allow));
    respond_error(exchange, HTTP_STATUS_METHOD_NOT_ALLOWED,
                  exchange.method + " is not allowed here: use " + std::string(allow));
  }
  return ok;
}

// lws 4.1 frames a request body by Content-Length alone: it joins repeated Content-Length headers
// into "7,50" and takes atoll() of that, ignores Transfer-Encoding (its chunk framing becomes body
// bytes, and what follows the length is parsed as the next request), and waits for 100 MiB, then
// times out without a reply, when a POST has no length. A proxy that frames the same bytes
// differently would be out of step with us (request smuggling), so such requests are refused.
struct FramingProblem {
  unsigned status;
  const char* message;
};

std::optional<FramingProblem> body_framing_problem(lws* wsi, bool post) {
  const bool chunked = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0;
  const std::string length = header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
  if (chunked && !length.empty()) {
    return FramingProblem{HTTP_STATUS_BAD_REQUEST,
                          "Transfer-Encoding and Content-Length together are ambiguous: send the "
                          "body with one Content-Length"};
  }
  if (chunked) {
    return FramingProblem{
        HTTP_STATUS_LENGTH_REQUIRED,
        "Transfer-Encoding is not supported: send the body with a Content-Length"};
  }
  if (!length.empty() &&
      (length.size() > 18 ||
       !std::all_of(length.begin(), length.end(), [](char c) { return c >= '0' && c <= '9'; }))) {
    return FramingProblem{HTTP_STATUS_BAD_REQUEST,
                          "Content-Length must be one decimal number, given once"};
  }
  if (post && length.empty()) {
    return FramingProblem{HTTP_STATUS_LENGTH_REQUIRED, "a POST needs a Content-Length"};
  }
  return std::nullopt;
}

}  // namespace

// lws 4.1 answers its own refusals with "HTTP/1.0" (it parses the request's version only on the
// plain-HTTP path), which strict clients such as python-websockets reject; write HTTP/1.1
// ourselves.
void write_refusal(lws* wsi, unsigned status, std::string_view message) {
  const char* phrase = status == 400   ? "Bad Request"
                       : status == 401 ? "Unauthorized"
                       : status == 403 ? "Forbidden"
                       : status == 404 ? "Not Found"
                       : status == 411 ? "Length Required"
                                       : "Service Unavailable";
  const std::string body = R"({"error":)" + json_quote(message) + "}\n";
  const std::string response =
      "HTTP/1.1 " + std::to_string(status) + " " + phrase +
      "\r\ncontent-type: application/json\r\ncontent-length: " + std::to_string(body.size()) +
      "\r\nconnection: close\r\n\r\n" + body;
  std::vector<unsigned char> buf(LWS_PRE + response.size());
  std::memcpy(buf.data() + LWS_PRE, response.data(), response.size());
  lws_write(wsi, buf.data() + LWS_PRE, response.size(), LWS_WRITE_HTTP_HEADERS);
}

std::string request_token(lws* wsi) {
  const std::string authorization = header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
  if (const auto bearer = bearer_token(authorization); !bearer.empty()) return std::string(bearer);
  char buf[1024];
  const char* value = lws_get_urlarg_by_name(wsi, "token=", buf, sizeof buf);
  return value != nullptr ? std::string(value) : std::string();
}

bool Service::authorized(Access access, std::string_view token) const {
  if (access == Access::publish) return options.token.empty() || tokens_equal(token, options.token);
  // The publish token also reads: whoever may write the stream may see it.
  return options.read_token.empty() || tokens_equal(token, options.read_token) ||
         (!options.token.empty() && tokens_equal(token, options.token));
}

// No --allow-origin: every origin. Otherwise a request without Origin (not a browser), the page's
// own origin (the dashboard served from here), "*" or a listed origin.
bool Service::origin_allowed(lws* wsi, std::string_view origin) const {
  if (options.allow_origins.empty() || origin.empty()) return true;
  for (const auto& allowed : options.allow_origins) {
    if (allowed == "*" || allowed == origin) return true;
  }
  const std::string host = header(wsi, WSI_TOKEN_HOST);
  const std::string scheme = options.cert_path.empty() ? "http://" : "https://";
  return !host.empty() && origin == scheme + host;
}

int Service::on_http_start(lws* wsi) {
  auto exchange = std::make_unique<HttpExchange>();
  char* uri = nullptr;
  int uri_len = 0;
  const int method = lws_http_get_uri_and_method(wsi, &uri, &uri_len);
  static constexpr const char* kMethods[] = {"GET",   "POST",   "OPTIONS", "PUT",
                                             "PATCH", "DELETE", "CONNECT", "HEAD"};
  exchange->method = method >= 0 && method < 8 ? kMethods[method] : "UNKNOWN";
  exchange->path.assign(uri != nullptr ? uri : "", uri_len > 0 ? uri_len : 0);
  if (exchange->method == "HEAD") {
    exchange->method = "GET";
    exchange->head_only = true;
  }
  if (const auto problem = body_framing_problem(wsi, exchange->method == "POST")) {
    log.warn("refused", {{"path", exchange->path},
                         {"status", static_cast<std::int64_t>(problem->status)},
                         {"reason", problem->message}});
    write_refusal(wsi, problem->status, problem->message);
    return -1;  // the rest of the connection cannot be framed: lws closes it after the reply
  }
  exchange->args = query_args(wsi);
  exchange->token = request_token(wsi);
  exchange->origin = header(wsi, WSI_TOKEN_ORIGIN);
  exchange->content_type = header(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE);
  exchange->idempotency_key = custom_header(wsi, "idempotency-key:");
  exchange->body_limit = options.max_message_bytes *
                         (is_ndjson(exchange->content_type) ? kNdjsonBodyFactor : std::size_t{1});
  HttpExchange& ref = *exchange;
  http_exchanges[wsi] = std::move(exchange);
  // A POST answers after its body (LWS_CALLBACK_HTTP_BODY_COMPLETION).
  if (ref.method == "POST") return 0;
  return on_http_request(wsi, ref);
}

int Service::on_http_request(lws* wsi, HttpExchange& exchange) {
  ++metrics.http_requests_total;
  try {
    route_http(wsi, exchange);
  } catch (const std::exception& e) {
    // A store read that failed (disk error, locked database) answers 500; the server goes on.
    log.error("http request failed", {{"path", exchange.path}, {"what", e.what()}});
    exchange.headers_out.clear();
    respond_error(exchange, HTTP_STATUS_INTERNAL_SERVER_ERROR,
                  std::string("internal error: ") + e.what());
  }
  if (exchange.ready) lws_callback_on_writable(wsi);
  return 0;
}

void Service::route_http(lws* wsi, HttpExchange& exchange) {
  if (!origin_allowed(wsi, exchange.origin)) {
    ++metrics.forbidden_origins;
    respond_error(exchange, HTTP_STATUS_FORBIDDEN, "origin not allowed (see --allow-origin)");
    return;
  }
  if (!exchange.origin.empty() && !options.allow_origins.empty()) {
    exchange.headers_out.emplace_back("access-control-allow-origin:", exchange.origin);
    exchange.headers_out.emplace_back("vary:", "Origin");
  }
  if (exchange.method == "OPTIONS") {  // CORS preflight
    exchange.headers_out.emplace_back("access-control-allow-methods:", "GET, POST, OPTIONS");
    exchange.headers_out.emplace_back("access-control-allow-headers:",
                                      "Authorization, Content-Type, Idempotency-Key");
    exchange.headers_out.emplace_back("access-control-max-age:", "600");
    respond(exchange, HTTP_STATUS_NO_CONTENT, "", "text/plain");
    return;
  }
  const std::string_view path = exchange.path;
  const bool events = path == kEventsPath;
  const bool stream = path == kStreamPath;
  const bool one_event = !stream && path.starts_with(kEventsPath) &&
                         path.size() > kEventsPath.size() + 1 && path[kEventsPath.size()] == '/';
  const bool read_api = events || stream || one_event || path == "/metrics";
  if (path == "/" || path == "/index.html") {
    if (!method_allowed(exchange, "GET")) return;
    exchange.headers_out.emplace_back("cache-control:", "no-cache");
    respond(exchange, HTTP_STATUS_OK, std::string(kDashboardHtml, kDashboardHtmlSize),
            "text/html; charset=utf-8");
  } else if (path == "/api/health") {
    if (!method_allowed(exchange, "GET")) return;
    // Open to all (load balancers probe it); without the read token it says only "ok".
    respond(exchange, HTTP_STATUS_OK, health_json(authorized(Access::read, exchange.token)));
  } else if (path == "/api/openapi.json") {
    if (!method_allowed(exchange, "GET")) return;
    respond(exchange, HTTP_STATUS_OK, std::string(openapi_json()));
  } else if (!read_api) {
    respond_error(exchange, HTTP_STATUS_NOT_FOUND, "not found");
  } else if (!method_allowed(exchange, events ? "GET, POST" : "GET")) {
    return;
  } else if (!authorized(exchange.method == "POST" ? Access::publish : Access::read,
                         exchange.token)) {
    ++metrics.http_unauthorized;
    exchange.headers_out.emplace_back("www-authenticate:", "Bearer realm=\"evstream\"");
    respond_error(exchange, HTTP_STATUS_UNAUTHORIZED,
                  "missing or wrong token: send Authorization: Bearer TOKEN or ?token=TOKEN");
  } else if (path == "/metrics") {
    respond(exchange, HTTP_STATUS_OK, metrics_text(), "text/plain; version=0.0.4; charset=utf-8");
  } else if (stream && exchange.head_only) {
    respond(exchange, HTTP_STATUS_OK, "", "application/x-ndjson");
  } else if (stream) {
    if (auto refusal = open_stream(wsi, exchange)) {
      respond_error(exchange, refusal->status, refusal->message);
    }
  } else if (one_event) {
    get_event(exchange, path.substr(kEventsPath.size() + 1));
  } else if (exchange.method == "POST") {
    post_events(wsi, exchange);
  } else {
    get_events(exchange);
  }
}

int Service::on_http_writeable(lws* wsi, HttpExchange& exchange) {
  if (!exchange.ready) return 0;  // a POST still waiting for the store
  if (!exchange.headers_sent) {
    std::vector<unsigned char> buf(LWS_PRE + 2048);
    unsigned char* start = buf.data() + LWS_PRE;
    unsigned char* p = start;
    unsigned char* end = buf.data() + buf.size() - 1;
    if (lws_add_http_common_headers(wsi, exchange.status, exchange.content_type_out.c_str(),
                                    exchange.body_out.size(), &p, end)) {
      return 1;
    }
    for (const auto& [name, value] : exchange.headers_out) {
      if (lws_add_http_header_by_name(wsi, reinterpret_cast<const unsigned char*>(name.c_str()),
                                      reinterpret_cast<const unsigned char*>(value.data()),
                                      static_cast<int>(value.size()), &p, end)) {
        return 1;
      }
    }
    if (lws_finalize_write_http_header(wsi, start, &p, end)) return 1;
    exchange.headers_sent = true;
    if (!exchange.body_out.empty() && !exchange.head_only) {
      lws_callback_on_writable(wsi);
      return 0;
    }
  } else {
    const std::size_t chunk =
        std::min<std::size_t>(exchange.body_out.size() - exchange.sent, 65536);
    const bool last = exchange.sent + chunk == exchange.body_out.size();
    scratch.resize(LWS_PRE + chunk);
    std::copy_n(exchange.body_out.data() + exchange.sent, chunk, scratch.data() + LWS_PRE);
    if (lws_write(wsi, scratch.data() + LWS_PRE, chunk,
                  last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != static_cast<int>(chunk)) {
      return 1;
    }
    exchange.sent += chunk;
    if (!last) {
      lws_callback_on_writable(wsi);
      return 0;
    }
  }
  on_http_closed(wsi);  // done with this exchange; keep-alive may bring the next
  return lws_http_transaction_completed(wsi) ? -1 : 0;
}

void Service::on_http_closed(lws* wsi) {
  auto found = http_exchanges.find(wsi);
  if (found == http_exchanges.end()) return;
  if (const auto id = found->second->stream_session; id != 0) {
    if (auto session = sessions.find(id); session != sessions.end()) on_closed(*session->second);
  }
  // Events of a POST whose client left are still stored and broadcast; only the reply is lost.
  if (found->second->tag != 0) http_pending.erase(found->second->tag);
  http_exchanges.erase(found);
}

int http_callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, std::size_t len) {
  try {
    switch (reason) {
      case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED: {
        // Every accepted connection (HTTP and WebSocket) comes here first, to protocols[0].
        // lws leaves Nagle on: a response written as headers then body would wait for the
        // client's delayed ACK (~40 ms) before its last segment leaves.
        const int fd = lws_get_socket_fd(wsi);
        const int one = 1;
        if (fd >= 0) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        return 0;
      }
      case LWS_CALLBACK_HTTP:
        return service_of(wsi).on_http_start(wsi);
      case LWS_CALLBACK_HTTP_BODY: {
        Service& service = service_of(wsi);
        auto found = service.http_exchanges.find(wsi);
        if (found == service.http_exchanges.end()) return -1;
        HttpExchange& exchange = *found->second;
        // Past the limit the rest is read and dropped, so the 413 can go out on a clean
        // connection (closing with unread data would reset it before the client reads the reply).
        if (exchange.body_too_large || exchange.body_in.size() + len > exchange.body_limit) {
          exchange.body_too_large = true;
          exchange.body_in = {};
        } else {
          exchange.body_in.append(static_cast<const char*>(in), len);
        }
        return 0;
      }
      case LWS_CALLBACK_HTTP_BODY_COMPLETION: {
        Service& service = service_of(wsi);
        auto found = service.http_exchanges.find(wsi);
        if (found == service.http_exchanges.end()) return -1;
        return service.on_http_request(wsi, *found->second);
      }
      case LWS_CALLBACK_HTTP_WRITEABLE: {
        Service& service = service_of(wsi);
        auto found = service.http_exchanges.find(wsi);
        if (found == service.http_exchanges.end()) return 0;
        HttpExchange& exchange = *found->second;
        if (exchange.stream_session != 0) {
          auto session = service.sessions.find(exchange.stream_session);
          if (session == service.sessions.end()) return -1;
          return service.on_stream_writeable(wsi, *session->second);
        }
        return service.on_http_writeable(wsi, exchange);
      }
      case LWS_CALLBACK_CLOSED_HTTP:
        service_of(wsi).on_http_closed(wsi);
        return 0;
      default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
  } catch (const std::exception& e) {
    // Nothing may throw through lws: drop this one connection and keep serving.
    service_of(wsi).log.error("internal error", {{"what", e.what()}});
    return -1;
  }
}

}  // namespace evstream
