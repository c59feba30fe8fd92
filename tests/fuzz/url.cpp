// Fuzz target: URLs and query-string escapes (core/util/util.hpp). --url values come from the
// command line and EVSTREAM_URL; query-string values arrive at serve from the network. Invariants:
// a parsed URL is complete (host, port 1-65535, path from '/') and its to_string() parses back to
// the same URL; url_decode undoes url_encode.
#include <string>
#include <vector>

#include "core/util/error.hpp"
#include "core/util/util.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

using namespace evstream;

bool same(const WsUrl& a, const WsUrl& b) {
  return a.tls == b.tls && a.host == b.host && a.port == b.port && a.path == b.path;
}

void check_url(const WsUrl& url, std::string_view default_path) {
  FUZZ_CHECK(!url.host.empty());
  FUZZ_CHECK(url.port >= 1 && url.port <= 65535);
  FUZZ_CHECK(url.path.starts_with('/'));
  FUZZ_CHECK(url.path.find('#') == std::string::npos);
  const std::string base = http_base(url);
  FUZZ_CHECK(base.starts_with(url.tls ? "https://" : "http://"));
  if (url.path.find("token=") != std::string::npos) return;  // to_string() masks token values
  const std::string shown = url.to_string();
  try {
    FUZZ_CHECK(same(parse_ws_url(shown, default_path), url));
  } catch (const Error&) {
    FUZZ_CHECK(!"to_string() gave a URL that does not parse");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = evstream::fuzz::as_text(data, size);

  const auto decoded = url_decode(text);
  if (decoded) FUZZ_CHECK(decoded->size() <= text.size());
  FUZZ_CHECK(url_decode(url_encode(text)) == std::string(text));

  // The first byte picks a default path the subcommands pass; the rest: one --url per line.
  if (text.empty()) return 0;
  static constexpr std::string_view kDefaultPaths[] = {"/ws/events", "/ws/publish", "/", ""};
  const std::string_view default_path = kDefaultPaths[data[0] % 4];
  const std::string_view rest = text.substr(1);
  try {
    check_url(parse_ws_url(rest, default_path), default_path);
  } catch (const Error&) {
  }
  std::vector<std::string> values;
  for (std::string_view lines = rest; !lines.empty();) {
    const auto [line, more] = evstream::fuzz::split_once(lines, '\n');
    values.emplace_back(line);
    lines = more;
  }
  try {
    const auto urls = parse_ws_url_list(values, default_path);
    FUZZ_CHECK(!urls.empty());
    for (const auto& url : urls) check_url(url, default_path);
    (void)to_string(urls);
  } catch (const Error&) {
  }
  return 0;
}
