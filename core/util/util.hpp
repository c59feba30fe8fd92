#pragma once
// Small pure helpers shared by every subcommand: durations, byte sizes and URL normalisation.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace evstream {

// Parses "500ms", "30s", "5m", "2h", "7d" (also "1.5s", "250us") into microseconds. A bare number
// is taken as seconds. Throws evstream::Error naming the bad text and the accepted forms.
std::int64_t parse_duration_us(std::string_view text);

// Formats microseconds back as the shortest exact unit ("30s", "1500ms", "2h").
std::string format_duration(std::int64_t us);

// Parses "4096", "1KiB", "1MiB", "512B", "1k", "2MB" (k/M/G are 1000s, Ki/Mi/Gi are 1024s, case
// insensitive on the B). Throws evstream::Error on bad input.
std::uint64_t parse_size(std::string_view text);

// A WebSocket endpoint split into what libwebsockets' client connect wants.
struct WsUrl {
  bool tls = false;
  std::string host;               // without brackets for IPv6
  int port = 0;                   // defaulted: 80 for ws, 443 for wss
  std::string path;               // always starts with '/', includes "?query" when given
  std::string to_string() const;  // "ws://host:port/path" for messages; token values masked
};

// Normalises a user-given URL per SPEC "Common": ws://, wss://, http:// (-> ws), https:// (-> wss),
// or a bare "host:port". When the URL has no path (or "/"), `default_path` is used, so
// "ws://localhost:8000" with default_path "/ws/events" gives "ws://localhost:8000/ws/events".
// Throws evstream::Error on an unparseable URL or an unknown scheme.
WsUrl parse_ws_url(std::string_view text, std::string_view default_path);

// The servers of a client's --url: every value may hold several URLs separated by commas
// ("ws://a:8000,ws://b:8000") and the option may be repeated; the result keeps their order. Spaces
// around an item are ignored. Each item goes through parse_ws_url(item, default_path). Throws
// evstream::Error naming the bad item, an empty item ("a,,b", "a,") or an empty list.
std::vector<WsUrl> parse_ws_url_list(const std::vector<std::string>& values,
                                     std::string_view default_path);

// "ws://a:1/p, ws://b:2/p" for messages (tokens masked, as WsUrl::to_string does).
std::string to_string(const std::vector<WsUrl>& urls);

// The same URL as http(s)://host:port (for REST calls made by replay and loadtest).
std::string http_base(const WsUrl& url);

// "1 event", "3 events": a count with its noun made to agree (nouns that take an "s").
std::string count_of(std::uint64_t count, std::string_view noun);

// Percent-decodes a query-string value ('+' becomes space). Returns nullopt on a bad escape.
std::optional<std::string> url_decode(std::string_view text);

// Percent-encodes a query-string value.
std::string url_encode(std::string_view text);

}  // namespace evstream
