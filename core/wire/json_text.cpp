#include "core/wire/json_text.hpp"

#include <nlohmann/json.hpp>

namespace evstream {

namespace {

using nlohmann::json;
// Validation only: a long double holds magnitudes up to ~1e4932, so numbers like 1e400 or a
// 400-digit integer (which a double would reject as an overflow) are accepted; their text is
// kept as published, never converted.
using ValidatingJson = nlohmann::basic_json<std::map, std::vector, std::string, bool, std::int64_t,
                                            std::uint64_t, long double>;

// A SAX handler that only tracks depth and the top-level kind; validation is the parser's job.
class CheckHandler : public nlohmann::json_sax<ValidatingJson> {
 public:
  bool null() override { return value(JsonKind::null); }
  bool boolean(bool) override { return value(JsonKind::boolean); }
  bool number_integer(number_integer_t) override { return value(JsonKind::number); }
  bool number_unsigned(number_unsigned_t) override { return value(JsonKind::number); }
  bool number_float(number_float_t, const string_t&) override { return value(JsonKind::number); }
  bool string(string_t&) override { return value(JsonKind::string); }
  bool binary(binary_t&) override { return value(JsonKind::string); }
  bool start_object(std::size_t) override { return open(JsonKind::object); }
  bool key(string_t&) override { return true; }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(JsonKind::array); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    m_result.error = strip_prefix(ex.what());
    return false;
  }

  JsonCheck result() {
    m_result.ok = m_result.error.empty();
    return m_result;
  }

 private:
  bool value(JsonKind kind) {
    if (m_depth == 0) m_result.kind = kind;
    return true;
  }
  bool open(JsonKind kind) {
    value(kind);
    if (++m_depth > kMaxJsonDepth) {
      m_result.error = "nesting deeper than " + std::to_string(kMaxJsonDepth) + " levels";
      return false;
    }
    return true;
  }
  bool close() {
    --m_depth;
    return true;
  }
  // "[json.exception.parse_error.101] parse error at ..." -> "parse error at ..."
  static std::string strip_prefix(std::string_view what) {
    const auto end = what.find("] ");
    if (what.starts_with("[json.exception.") && end != std::string_view::npos) {
      what.remove_prefix(end + 2);
    }
    return std::string(what);
  }

  std::size_t m_depth = 0;
  JsonCheck m_result;
};

bool is_json_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// Index just past the string token starting at `pos` (which holds the opening quote).
std::size_t skip_string(std::string_view text, std::size_t pos) {
  for (++pos; pos < text.size(); ++pos) {
    if (text[pos] == '\\') {
      ++pos;
    } else if (text[pos] == '"') {
      return pos + 1;
    }
  }
  return text.size();
}

// Index just past the value starting at `pos` in minified valid JSON.
std::size_t skip_value(std::string_view text, std::size_t pos) {
  std::size_t depth = 0;
  while (pos < text.size()) {
    const char c = text[pos];
    if (c == '"') {
      pos = skip_string(text, pos);
      if (depth == 0) return pos;
      continue;
    }
    if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (depth == 0) return pos;  // end of the enclosing container
      if (--depth == 0) return pos + 1;
    } else if (c == ',' && depth == 0) {
      return pos;
    }
    ++pos;
  }
  return pos;
}

}  // namespace

JsonCheck check_json(std::string_view text) {
  // nlohmann's lexer takes a NUL byte outside a string for the end of the input (as in a C
  // string), so "{}\0junk" would pass and its junk be stored and sent to every subscriber. A NUL
  // is never valid JSON text (inside a string it must be escaped as \u0000).
  if (const auto nul = text.find('\0'); nul != std::string_view::npos) {
    JsonCheck result;
    result.error = "syntax error at byte " + std::to_string(nul + 1) + ": unexpected NUL byte";
    return result;
  }
  CheckHandler handler;
  ValidatingJson::sax_parse(text.begin(), text.end(), &handler,
                            nlohmann::detail::input_format_t::json,
                            /*strict=*/true);
  return handler.result();
}

std::string minify_json(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t pos = 0; pos < text.size();) {
    if (text[pos] == '"') {
      const std::size_t end = skip_string(text, pos);
      out.append(text.substr(pos, end - pos));
      pos = end;
    } else {
      if (!is_json_space(text[pos])) out += text[pos];
      ++pos;
    }
  }
  return out;
}

std::vector<JsonMember> top_level_members(std::string_view object_text) {
  std::vector<JsonMember> members;
  if (object_text.size() < 2 || object_text.front() != '{') return members;
  std::size_t pos = 1;
  while (pos < object_text.size() && object_text[pos] == '"') {
    const std::size_t key_end = skip_string(object_text, pos);
    // Not minified valid JSON (a truncated frame): stop rather than read past the end.
    if (key_end >= object_text.size() || object_text[key_end] != ':') break;
    auto key = decode_json_string(object_text.substr(pos, key_end - pos));
    const std::size_t value_start = key_end + 1;  // past ':'
    const std::size_t value_end = skip_value(object_text, value_start);
    members.push_back({key.value_or(""), object_text.substr(value_start, value_end - value_start)});
    pos = value_end + 1;  // past ',' (or '}', which ends the loop)
  }
  return members;
}

std::vector<std::string_view> array_elements(std::string_view array_text) {
  std::vector<std::string_view> elements;
  if (array_text.size() < 2 || array_text.front() != '[') return elements;
  std::size_t pos = 1;
  while (pos < array_text.size() && array_text[pos] != ']') {
    const std::size_t end = skip_value(array_text, pos);
    if (end == pos) break;  // not minified valid JSON: stop rather than loop
    elements.push_back(array_text.substr(pos, end - pos));
    pos = end + 1;  // past ',' (or ']', which ends the loop)
  }
  return elements;
}

std::optional<std::string> decode_json_string(std::string_view token) {
  if (token.size() < 2 || token.front() != '"') return std::nullopt;
  if (token.find('\\') == std::string_view::npos) {
    return std::string(token.substr(1, token.size() - 2));
  }
  auto value = json::parse(token, nullptr, /*allow_exceptions=*/false);
  if (!value.is_string()) return std::nullopt;
  return value.get<std::string>();
}

std::string json_quote(std::string_view value) {
  return json(std::string(value)).dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace evstream
