// Fuzz target: how tail prints a record (core/wire/record_format.hpp). The template comes from
// --format; the record's topic, time and data come from the server over the network. The input
// is the template, a newline, then the data text. Invariants: nothing throws, the NDJSON line of
// a record with valid parts is valid JSON, "{{" and "}}" print single braces.
#include <string>

#include "core/wire/json_text.hpp"
#include "core/wire/record_format.hpp"
#include "tests/fuzz/fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace evstream;
  const auto [pattern, body] = fuzz::split_once(fuzz::as_text(data, size), '\n');
  const WireRecord record{42, "events", "2026-11-25T17:01:12.123456Z", body};

  (void)format_template(pattern, record);
  (void)format_pretty_line(record, true);
  (void)format_pretty_line(record, false);
  if (check_json(body).kind == JsonKind::object) {
    FUZZ_CHECK(check_json(format_json_line(record)).kind == JsonKind::object);
    FUZZ_CHECK(format_template("{data}", record) == body);
  }
  // A pattern without braces prints as it is; doubled braces print once.
  if (pattern.find_first_of("{}") == std::string_view::npos) {
    FUZZ_CHECK(format_template(pattern, record) == pattern);
    std::string doubled = "{{";
    doubled.append(pattern).append("}}");
    FUZZ_CHECK(format_template(doubled, record) == "{" + std::string(pattern) + "}");
  }
  return 0;
}
