// Fuzz target: JSON text validation and the byte-keeping helpers (core/wire/json_text.hpp) that
// every published event, POST body and REST page goes through. Invariants: minify_json keeps
// every token's bytes (numbers keep their digits, strings their escapes) and is idempotent; the
// members and elements found in a minified object or array rebuild it exactly.
#include <string>
#include <vector>

#include "core/wire/json_text.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

using namespace evstream;

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}
bool is_structural(char c) {
  return c == '{' || c == '}' || c == '[' || c == ']' || c == ':' || c == ',';
}

// The tokens of valid JSON text, written independently of json_text.cpp.
std::vector<std::string_view> tokens(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const char c = text[pos];
    std::size_t end = pos + 1;
    if (is_space(c)) {
      ++pos;
      continue;
    }
    if (c == '"') {
      while (end < text.size() && text[end] != '"') end += text[end] == '\\' ? 2 : 1;
      ++end;
    } else if (!is_structural(c)) {
      while (end < text.size() && !is_space(text[end]) && !is_structural(text[end]) &&
             text[end] != '"') {
        ++end;
      }
    }
    FUZZ_CHECK(end <= text.size());
    out.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

// The raw key tokens of a minified object's top-level members, from its tokens.
std::vector<std::string_view> top_level_keys(const std::vector<std::string_view>& toks) {
  std::vector<std::string_view> keys;
  int depth = 0;
  for (std::size_t i = 0; i < toks.size(); ++i) {
    const char c = toks[i].front();
    if (c == '{' || c == '[') ++depth;
    if (c == '}' || c == ']') --depth;
    if (depth == 1 && c == '"' && i + 1 < toks.size() && toks[i + 1] == ":") {
      keys.push_back(toks[i]);
    }
  }
  return keys;
}

void check_members(const std::string& minified) {
  const auto members = top_level_members(minified);
  const auto keys = top_level_keys(tokens(minified));
  FUZZ_CHECK(members.size() == keys.size());
  std::string rebuilt = "{";
  for (std::size_t i = 0; i < members.size(); ++i) {
    FUZZ_CHECK(decode_json_string(keys[i]) == members[i].key);
    FUZZ_CHECK(check_json(members[i].value).ok);
    if (i > 0) rebuilt += ',';
    rebuilt.append(keys[i]).append(":").append(members[i].value);
  }
  rebuilt += '}';
  FUZZ_CHECK(rebuilt == minified);
}

void check_elements(const std::string& minified) {
  std::string rebuilt = "[";
  bool first = true;
  for (const auto element : array_elements(minified)) {
    FUZZ_CHECK(check_json(element).ok);
    if (!first) rebuilt += ',';
    rebuilt += element;
    first = false;
  }
  rebuilt += ']';
  FUZZ_CHECK(rebuilt == minified);
}

void check_string(const std::string& minified) {
  const auto value = decode_json_string(minified);
  FUZZ_CHECK(value.has_value());
  const std::string quoted = json_quote(*value);
  FUZZ_CHECK(check_json(quoted).kind == JsonKind::string);
  FUZZ_CHECK(decode_json_string(quoted) == value);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = evstream::fuzz::as_text(data, size);
  // Any bytes quote to one valid JSON string (invalid UTF-8 replaced).
  FUZZ_CHECK(check_json(json_quote(text)).kind == JsonKind::string);

  const JsonCheck check = check_json(text);
  if (!check.ok) {
    FUZZ_CHECK(!check.error.empty());
    return 0;
  }
  const std::string minified = minify_json(text);
  const JsonCheck again = check_json(minified);
  FUZZ_CHECK(again.ok && again.kind == check.kind);
  FUZZ_CHECK(minify_json(minified) == minified);
  FUZZ_CHECK(tokens(minified) == tokens(text));
  switch (check.kind) {
    case JsonKind::object:
      check_members(minified);
      break;
    case JsonKind::array:
      check_elements(minified);
      break;
    case JsonKind::string:
      check_string(minified);
      break;
    default:
      FUZZ_CHECK(tokens(minified).size() == 1);
      break;
  }
  return 0;
}
