#include "core/util/util.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <numeric>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/util/error.hpp"

namespace evstream {
namespace {

constexpr std::string_view kDurationForms = "use a number with a unit: 500ms, 30s, 5m, 2h, 7d";
constexpr std::string_view kSizeForms =
    "use a number of bytes with an optional unit: 4096, 512B, 64KiB, 1MiB, 2MB";
constexpr std::string_view kUrlForms = "use ws://host:port, wss://, http://, https:// or host:port";

// `evstream serve` listens on 8000, so a bare "host" (no scheme) means the product's own port; an
// explicit scheme keeps that scheme's usual port.
constexpr int kBareHostPort = 8000;

struct Unit {
  std::string_view suffix;
  std::uint64_t factor;
};

// Largest first, so format_duration can pick the coarsest exact unit.
constexpr std::array<Unit, 6> kDurationUnits{{{"d", 86'400'000'000},
                                              {"h", 3'600'000'000},
                                              {"m", 60'000'000},
                                              {"s", 1'000'000},
                                              {"ms", 1'000},
                                              {"us", 1}}};

constexpr std::array<Unit, 9> kSizePrefixes{{{"", 1},
                                             {"k", 1'000},
                                             {"m", 1'000'000},
                                             {"g", 1'000'000'000},
                                             {"t", 1'000'000'000'000},
                                             {"ki", std::uint64_t{1} << 10},
                                             {"mi", std::uint64_t{1} << 20},
                                             {"gi", std::uint64_t{1} << 30},
                                             {"ti", std::uint64_t{1} << 40}}};

struct Scheme {
  std::string_view name;
  bool tls;
  int port;
};

constexpr std::array<Scheme, 4> kSchemes{
    {{"ws", false, 80}, {"wss", true, 443}, {"http", false, 80}, {"https", true, 443}}};

Error input_error(std::string_view what, std::string_view text, std::string_view reason,
                  std::string_view forms) {
  std::string message = "invalid " + std::string(what) + " \"" + std::string(text) + "\": ";
  if (!reason.empty()) message += std::string(reason) + "; ";
  return Error(message + std::string(forms));
}

// ASCII only: <cctype> answers depend on the process locale.
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_alnum(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
char to_lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = to_lower(c);
  return out;
}

// A non-negative decimal `whole + frac / frac_scale`. Fraction digits past 10^18 cannot change an
// exact whole number of microseconds or bytes, so they only matter for being non-zero.
struct Decimal {
  std::uint64_t whole = 0;
  std::uint64_t frac = 0;
  std::uint64_t frac_scale = 1;
  bool whole_overflow = false;
  bool frac_truncated = false;
};

// Reads `[0-9]+(\.[0-9]+)?` from the front of `text`; returns the characters used (0: no number).
std::size_t read_decimal(std::string_view text, Decimal& out) {
  constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
  std::size_t i = 0;
  for (; i < text.size() && is_digit(text[i]); ++i) {
    const auto digit = static_cast<std::uint64_t>(text[i] - '0');
    if (out.whole > (kMax - digit) / 10) out.whole_overflow = true;
    out.whole = out.whole * 10 + digit;
  }
  if (i == 0) return 0;
  if (i + 1 >= text.size() || text[i] != '.' || !is_digit(text[i + 1])) return i;
  for (++i; i < text.size() && is_digit(text[i]); ++i) {
    const auto digit = static_cast<std::uint64_t>(text[i] - '0');
    if (out.frac_scale > 100'000'000'000'000'000ULL) {
      out.frac_truncated = out.frac_truncated || digit != 0;
      continue;
    }
    out.frac = out.frac * 10 + digit;
    out.frac_scale *= 10;
  }
  return i;
}

enum class ScaleResult { ok, overflow, inexact };

// value * factor as an exact integer no larger than `limit`. With g = gcd(factor, frac_scale),
// frac * factor / frac_scale is whole only when frac_scale / g divides frac, and then the product
// is below factor, so nothing here can overflow before the final check.
ScaleResult scale(const Decimal& value, std::uint64_t factor, std::uint64_t limit,
                  std::uint64_t& out) {
  if (value.frac_truncated) return ScaleResult::inexact;
  const std::uint64_t g = std::gcd(factor, value.frac_scale);
  const std::uint64_t denominator = value.frac_scale / g;
  if (value.frac % denominator != 0) return ScaleResult::inexact;
  const std::uint64_t frac_part = value.frac / denominator * (factor / g);
  if (value.whole_overflow || value.whole > (limit - frac_part) / factor) {
    return ScaleResult::overflow;
  }
  out = value.whole * factor + frac_part;
  return ScaleResult::ok;
}

template <std::size_t N>
const Unit* find_unit(const std::array<Unit, N>& units, std::string_view suffix) {
  for (const Unit& unit : units) {
    if (unit.suffix == suffix) return &unit;
  }
  return nullptr;
}

// "512B", "1KiB", "2mb": drops one trailing B (any case) and lowercases the prefix.
const Unit* find_size_unit(std::string_view suffix) {
  if (!suffix.empty() && (suffix.back() == 'B' || suffix.back() == 'b')) suffix.remove_suffix(1);
  return find_unit(kSizePrefixes, lower(suffix));
}

std::string host_for_url(const std::string& host) {
  return host.find(':') == std::string::npos ? host : "[" + host + "]";
}

const Scheme* find_scheme(std::string_view name) {
  const std::string wanted = lower(name);
  for (const Scheme& scheme : kSchemes) {
    if (scheme.name == wanted) return &scheme;
  }
  return nullptr;
}

bool looks_like_scheme(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (!is_alnum(c) && c != '+' && c != '-' && c != '.') {
      return false;
    }
  }
  return true;
}

int parse_port(std::string_view url, std::string_view text) {
  int port = 0;
  bool ok = !text.empty() && text.size() <= 5;
  for (char c : text) {
    ok = ok && is_digit(c);
    if (ok) port = port * 10 + (c - '0');
  }
  if (!ok || port < 1 || port > 65535) {
    throw input_error("URL", url,
                      "port \"" + std::string(text) + "\" is not a number from 1 to 65535",
                      kUrlForms);
  }
  return port;
}

// Fills host and port from "host", "host:port", "[v6]" or "[v6]:port".
void parse_authority(std::string_view url, std::string_view authority, int default_port,
                     WsUrl& out) {
  if (authority.find('@') != std::string_view::npos) {
    throw input_error("URL", url, "user@host is not supported (pass credentials with --token)",
                      kUrlForms);
  }
  std::string_view host = authority;
  std::optional<std::string_view> port;  // set when a ':' is given, even if nothing follows it
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      throw input_error("URL", url, "the IPv6 address has no closing ']'", kUrlForms);
    }
    host = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty() && !after.starts_with(':')) {
      throw input_error("URL", url, "unexpected text after ']'", kUrlForms);
    }
    if (!after.empty()) port = after.substr(1);
  } else if (const auto colon = authority.find(':'); colon != std::string_view::npos) {
    if (authority.find(':', colon + 1) != std::string_view::npos) {
      throw input_error("URL", url, "IPv6 addresses need brackets, as in ws://[::1]:8000",
                        kUrlForms);
    }
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) throw input_error("URL", url, "the host is missing", kUrlForms);
  // A stray bracket ("ws://[[]") would be written back unbracketed and no longer parse.
  if (host.find_first_of("[]") != std::string_view::npos) {
    throw input_error("URL", url, "unexpected '[' or ']' in the host", kUrlForms);
  }
  out.host = std::string(host);
  out.port = port ? parse_port(url, *port) : default_port;
}

// "/p?q" kept as given; an empty path or "/" becomes `default_path`. Fragments never reach a
// WebSocket server (RFC 6455 section 3), so they are dropped.
std::string make_path(std::string_view rest, std::string_view default_path) {
  rest = rest.substr(0, rest.find('#'));
  const auto query_at = std::min(rest.find('?'), rest.size());
  std::string path(rest.substr(0, query_at));
  if (path.empty() || path == "/") {
    path.clear();
    if (!default_path.starts_with('/')) path += '/';
    path += default_path;
  }
  path += rest.substr(query_at);
  return path;
}

int hex_value(char c) {
  if (is_digit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::int64_t parse_duration_us(std::string_view text) {
  if (text.starts_with('-')) {
    throw input_error("duration", text, "it cannot be negative", kDurationForms);
  }
  Decimal value;
  const std::size_t used = read_decimal(text, value);
  const std::string_view suffix = text.substr(used);
  const Unit* unit =
      suffix.empty() ? find_unit(kDurationUnits, "s") : find_unit(kDurationUnits, suffix);
  if (used == 0 || unit == nullptr) throw input_error("duration", text, "", kDurationForms);
  std::uint64_t us = 0;
  switch (scale(value, unit->factor, std::numeric_limits<std::int64_t>::max(), us)) {
    case ScaleResult::ok:
      return static_cast<std::int64_t>(us);
    case ScaleResult::inexact:
      throw input_error("duration", text, "it is finer than 1us", kDurationForms);
    case ScaleResult::overflow:
      break;
  }
  throw input_error("duration", text, "it is too large (the limit is about 292000 years)",
                    kDurationForms);
}

std::string count_of(std::uint64_t count, std::string_view noun) {
  return std::to_string(count) + " " + std::string(noun) + (count == 1 ? "" : "s");
}

std::string format_duration(std::int64_t us) {
  if (us == 0) return "0s";
  // Unsigned magnitude so INT64_MIN formats too.
  const std::uint64_t magnitude =
      us < 0 ? std::uint64_t{0} - static_cast<std::uint64_t>(us) : static_cast<std::uint64_t>(us);
  const std::string sign = us < 0 ? "-" : "";
  for (const Unit& unit : kDurationUnits) {
    if (magnitude % unit.factor == 0) {
      return sign + std::to_string(magnitude / unit.factor) + std::string(unit.suffix);
    }
  }
  return sign + std::to_string(magnitude) + "us";  // unreachable: "us" divides everything
}

std::uint64_t parse_size(std::string_view text) {
  if (text.starts_with('-')) throw input_error("size", text, "it cannot be negative", kSizeForms);
  Decimal value;
  const std::size_t used = read_decimal(text, value);
  const Unit* unit = find_size_unit(text.substr(used));
  if (used == 0 || unit == nullptr) throw input_error("size", text, "", kSizeForms);
  std::uint64_t bytes = 0;
  switch (scale(value, unit->factor, std::numeric_limits<std::uint64_t>::max(), bytes)) {
    case ScaleResult::ok:
      return bytes;
    case ScaleResult::inexact:
      throw input_error("size", text, "it is not a whole number of bytes", kSizeForms);
    case ScaleResult::overflow:
      break;
  }
  throw input_error("size", text, "it does not fit in 64 bits", kSizeForms);
}

std::string WsUrl::to_string() const {
  std::string shown = path;
  // For messages and logs: a token in the query is a secret, so its value is masked.
  for (std::size_t at = shown.find("token="); at != std::string::npos;
       at = shown.find("token=", at + 1)) {
    if (at > 0 && shown[at - 1] != '?' && shown[at - 1] != '&') continue;
    const std::size_t start = at + 6;
    const std::size_t end = std::min(shown.find('&', start), shown.size());
    shown.replace(start, end - start, "***");
  }
  return std::string(tls ? "wss://" : "ws://") + host_for_url(host) + ":" + std::to_string(port) +
         shown;
}

WsUrl parse_ws_url(std::string_view text, std::string_view default_path) {
  WsUrl url;
  std::string_view rest = text;
  int default_port = kBareHostPort;
  if (const auto sep = rest.find("://");
      sep != std::string_view::npos && looks_like_scheme(rest.substr(0, sep))) {
    const Scheme* scheme = find_scheme(rest.substr(0, sep));
    if (scheme == nullptr) {
      throw input_error("URL", text, "", "expected ws://, wss://, http:// or https://");
    }
    url.tls = scheme->tls;
    default_port = scheme->port;
    rest.remove_prefix(sep + 3);
  }
  if (rest.empty()) throw input_error("URL", text, "the host is missing", kUrlForms);
  const auto authority_end = std::min(rest.find_first_of("/?#"), rest.size());
  parse_authority(text, rest.substr(0, authority_end), default_port, url);
  url.path = make_path(rest.substr(authority_end), default_path);
  return url;
}

std::vector<WsUrl> parse_ws_url_list(const std::vector<std::string>& values,
                                     std::string_view default_path) {
  std::vector<WsUrl> urls;
  for (const std::string& value : values) {
    const std::string_view list = value;
    std::size_t start = 0;
    while (true) {
      const std::size_t comma = std::min(list.find(',', start), list.size());
      std::string_view item = list.substr(start, comma - start);
      const auto first = item.find_first_not_of(" \t");
      item = first == std::string_view::npos
                 ? std::string_view{}
                 : item.substr(first, item.find_last_not_of(" \t") - first + 1);
      if (item.empty()) {
        throw input_error("URL list", list, "it has an empty item",
                          "separate the URLs with single commas (ws://a:8000,ws://b:8000)");
      }
      urls.push_back(parse_ws_url(item, default_path));
      if (comma == list.size()) break;
      start = comma + 1;
    }
  }
  if (urls.empty()) {
    throw Error(
        "no server URL given: use --url ws://host:port (several: --url A,B or --url repeated)");
  }
  return urls;
}

std::string to_string(const std::vector<WsUrl>& urls) {
  std::string out;
  for (const WsUrl& url : urls) {
    if (!out.empty()) out += ", ";
    out += url.to_string();
  }
  return out;
}

std::string http_base(const WsUrl& url) {
  return std::string(url.tls ? "https://" : "http://") + host_for_url(url.host) + ":" +
         std::to_string(url.port);
}

std::optional<std::string> url_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out += ' ';
    } else if (text[i] != '%') {
      out += text[i];
    } else {
      if (i + 2 >= text.size()) return std::nullopt;
      const int hi = hex_value(text[i + 1]);
      const int lo = hex_value(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    }
  }
  return out;
}

std::string url_encode(std::string_view text) {
  constexpr std::string_view kHex = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (is_alnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[byte >> 4];
      out += kHex[byte & 0x0F];
    }
  }
  return out;
}

}  // namespace evstream
