// The HTTP half of serve, on the same port and context as the WebSockets.
#include <unistd.h>

#include <fstream>

#include "core/json_text.hpp"
#include "core/server_impl.hpp"

namespace evstream {

namespace {

Server::Impl& impl_of(lws* wsi) {
  return *static_cast<Server::Impl*>(lws_context_user(lws_get_context(wsi)));
}

std::string json_error(std::string_view message) {
  return "{\"error\":" + json_quote(message) + "}";
}

std::int64_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::int64_t pages_total = 0;
  std::int64_t pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return pages_resident * sysconf(_SC_PAGESIZE);
}

}  // namespace

std::string Server::Impl::health_json() {
  std::size_t subscribers = 0;
  for (const auto& [id, session] : sessions) subscribers += session->role == Role::subscriber;
  const StoreStats stats = read_store->stats();
  std::string out = "{\"status\":\"ok\",\"version\":\"" EVSTREAM_VERSION "\"";
  out += ",\"uptime_s\":" + std::to_string((now_unix_us() - started_us) / 1'000'000);
  out += ",\"subscribers\":" + std::to_string(subscribers);
  out += ",\"publishers\":" + std::to_string(sessions.size() - subscribers);
  out += ",\"events_total\":" + std::to_string(stats.events);
  out += ",\"last_event_id\":" + std::to_string(head);
  out += ",\"rss_bytes\":" + std::to_string(rss_bytes());
  out += ",\"db\":{\"path\":" + json_quote(options.db);
  out += ",\"bytes\":" + std::to_string(stats.file_bytes);
  out += ",\"durability\":\"";
  out += options.durability == Durability::full ? "full" : "normal";
  out += "\",\"queue_depth\":" + std::to_string(writer->queued()) + "}}";
  return out;
}

void Server::Impl::route_http(HttpExchange& exchange) {
  if (exchange.path == "/api/health") {
    if (exchange.method != "GET") {
      exchange.status = HTTP_STATUS_METHOD_NOT_ALLOWED;
      exchange.body_out = json_error("method not allowed: use GET");
      return;
    }
    exchange.body_out = health_json();
    return;
  }
  exchange.status = HTTP_STATUS_NOT_FOUND;
  exchange.body_out = json_error("not found");
}

int Server::Impl::on_http_request(lws* wsi, HttpExchange& exchange) {
  route_http(exchange);
  lws_callback_on_writable(wsi);
  return 0;
}

int Server::Impl::on_http_writeable(lws* wsi, HttpExchange& exchange) {
  if (!exchange.headers_sent) {
    std::vector<unsigned char> buf(LWS_PRE + 1024);
    unsigned char* start = buf.data() + LWS_PRE;
    unsigned char* p = start;
    unsigned char* end = buf.data() + buf.size() - 1;
    if (lws_add_http_common_headers(wsi, exchange.status, exchange.content_type.c_str(),
                                    exchange.body_out.size(), &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end)) {
      return 1;
    }
    exchange.headers_sent = true;
    lws_callback_on_writable(wsi);
    return 0;
  }
  const std::size_t chunk = std::min<std::size_t>(exchange.body_out.size() - exchange.sent, 65536);
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
  http_exchanges.erase(wsi);
  return lws_http_transaction_completed(wsi) ? -1 : 0;
}

int http_callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, std::size_t len) {
  try {
    switch (reason) {
      case LWS_CALLBACK_HTTP: {
        Server::Impl& impl = impl_of(wsi);
        auto exchange = std::make_unique<HttpExchange>();
        char* uri = nullptr;
        int uri_len = 0;
        const int method = lws_http_get_uri_and_method(wsi, &uri, &uri_len);
        static constexpr const char* kMethods[] = {"GET", "POST", "OPTIONS", "PUT", "PATCH",
                                                   "DELETE", "CONNECT", "HEAD"};
        exchange->method = method >= 0 && method < 8 ? kMethods[method] : "UNKNOWN";
        exchange->path.assign(uri != nullptr ? uri : "", uri_len > 0 ? uri_len : 0);
        HttpExchange& ref = *exchange;
        impl.http_exchanges[wsi] = std::move(exchange);
        // A POST answers after its body (LWS_CALLBACK_HTTP_BODY_COMPLETION).
        if (ref.method == "POST") return 0;
        return impl.on_http_request(wsi, ref);
      }
      case LWS_CALLBACK_HTTP_BODY: {
        Server::Impl& impl = impl_of(wsi);
        auto found = impl.http_exchanges.find(wsi);
        if (found == impl.http_exchanges.end()) return -1;
        auto& body = found->second->body_in;
        if (body.size() + len > impl.options.max_message_bytes) {
          found->second->body_too_large = true;
        } else {
          body.append(static_cast<const char*>(in), len);
        }
        return 0;
      }
      case LWS_CALLBACK_HTTP_BODY_COMPLETION: {
        Server::Impl& impl = impl_of(wsi);
        auto found = impl.http_exchanges.find(wsi);
        if (found == impl.http_exchanges.end()) return -1;
        return impl.on_http_request(wsi, *found->second);
      }
      case LWS_CALLBACK_HTTP_WRITEABLE: {
        Server::Impl& impl = impl_of(wsi);
        auto found = impl.http_exchanges.find(wsi);
        if (found == impl.http_exchanges.end()) return 0;
        return impl.on_http_writeable(wsi, *found->second);
      }
      case LWS_CALLBACK_CLOSED_HTTP:
        impl_of(wsi).http_exchanges.erase(wsi);
        return 0;
      default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
  } catch (const std::exception& e) {
    impl_of(wsi).log.error("internal error", {{"what", e.what()}});
    return -1;
  }
}

}  // namespace evstream
