#include "core/wire/record_format.hpp"

#include <charconv>
#include <nlohmann/json.hpp>

namespace evstream {

namespace {

constexpr std::string_view kDim = "\x1b[2m";
constexpr std::string_view kYellow = "\x1b[33m";
constexpr std::string_view kCyan = "\x1b[36m";
constexpr std::string_view kReset = "\x1b[0m";

std::string painted(std::string_view text, std::string_view color, bool enabled) {
  std::string out;
  if (enabled) out += color;
  out += text;
  if (enabled) out += kReset;
  return out;
}

// "2026-11-25T17:01:12.123456Z" -> "2026-11-25 17:01:12.123"
std::string short_time(std::string_view time) {
  if (time.size() < 23) return std::string(time);
  std::string out(time.substr(0, 23));
  out[10] = ' ';
  return out;
}

std::string lookup(const nlohmann::json& data, std::string_view path) {
  const nlohmann::json* node = &data;
  while (!path.empty()) {
    const auto dot = path.find('.');
    const std::string part(path.substr(0, dot));
    path = dot == std::string_view::npos ? std::string_view{} : path.substr(dot + 1);
    if (node->is_object()) {
      auto it = node->find(part);
      if (it == node->end()) return {};
      node = &*it;
    } else if (node->is_array() && !part.empty() &&
               part.find_first_not_of("0123456789") == std::string::npos) {
      // An index too large for size_t is past the end too (std::stoul would throw).
      std::size_t index = 0;
      const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), index);
      if (ec != std::errc() || index >= node->size()) return {};
      node = &(*node)[index];
    } else {
      return {};
    }
  }
  if (node->is_string()) return node->get<std::string>();
  return node->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string field(std::string_view name, const WireRecord& record, const nlohmann::json* data) {
  if (name == "id") return std::to_string(record.id);
  if (name == "time") return std::string(record.time);
  if (name == "topic") return std::string(record.topic);
  if (name == "data") return std::string(record.data);
  if (name.starts_with("data.") && data != nullptr) return lookup(*data, name.substr(5));
  return {};
}

}  // namespace

std::string format_json_line(const WireRecord& record) {
  std::string out = "{\"id\":" + std::to_string(record.id) + ",\"topic\":\"";
  out += record.topic;
  out += "\",\"time\":\"";
  out += record.time;
  out += "\",\"data\":";
  out += record.data;
  out += '}';
  return out;
}

std::string format_pretty_line(const WireRecord& record, bool color) {
  std::string out = painted(short_time(record.time), kDim, color);
  out += "  ";
  out += painted("#" + std::to_string(record.id), kYellow, color);
  out += "  ";
  out += painted(record.topic, kCyan, color);
  out += "  ";
  out += record.data;
  return out;
}

std::string format_template(std::string_view pattern, const WireRecord& record) {
  nlohmann::json data;
  const bool needs_data = pattern.find("{data.") != std::string_view::npos;
  if (needs_data) data = nlohmann::json::parse(record.data, nullptr, false);
  std::string out;
  for (std::size_t i = 0; i < pattern.size();) {
    if (pattern.compare(i, 2, "{{") == 0 || pattern.compare(i, 2, "}}") == 0) {
      out += pattern[i];
      i += 2;
      continue;
    }
    const auto close = pattern[i] == '{' ? pattern.find('}', i) : std::string_view::npos;
    if (close == std::string_view::npos) {
      out += pattern[i++];
      continue;
    }
    out += field(pattern.substr(i + 1, close - i - 1), record,
                 needs_data && !data.is_discarded() ? &data : nullptr);
    i = close + 1;
  }
  return out;
}

}  // namespace evstream
