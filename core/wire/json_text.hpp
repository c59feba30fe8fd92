#pragma once
// JSON text handling that keeps the published bytes: nlohmann_json validates (SAX, no DOM, no
// exceptions), and the helpers here only strip insignificant whitespace and locate top-level
// members, so numbers keep every digit and strings keep their escapes.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace evstream {

enum class JsonKind { object, array, string, number, boolean, null };

struct JsonCheck {
  bool ok = false;
  JsonKind kind = JsonKind::null;  // the top-level value's kind when ok
  std::string error;               // "parse error at line 1, column 5: ..." when not ok
};

inline constexpr std::size_t kMaxJsonDepth = 512;

// Validates `text` as one JSON value (UTF-8, nesting at most kMaxJsonDepth).
JsonCheck check_json(std::string_view text);

// `text` (valid JSON) without whitespace outside strings.
std::string minify_json(std::string_view text);

// One member of a top-level object: the decoded key and the raw value text.
struct JsonMember {
  std::string key;
  std::string_view value;
};

// The members of a minified, valid JSON object, in order. Views point into `object_text`. Other
// text gives a meaningless list, but never a read past its end.
std::vector<JsonMember> top_level_members(std::string_view object_text);

// The elements of a minified, valid JSON array, in order, as raw text. Views point into
// `array_text`.
std::vector<std::string_view> array_elements(std::string_view array_text);

// Decodes a raw JSON string token (with quotes) into its UTF-8 value; nullopt if not a string.
std::optional<std::string> decode_json_string(std::string_view token);

// `value` as a JSON string token, escaped.
std::string json_quote(std::string_view value);

}  // namespace evstream
