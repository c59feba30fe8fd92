// Fuzz target: where= filter expressions (core/wire/filter.hpp), which arrive in query strings and
// flags, and the event index they are matched against. Input: EXPRESSION '\n' DATA.
// Invariants: a refusal names a position inside the expression; != is exactly "not ="; number
// comparison is reflexive and antisymmetric on every number of the data.
#include <string>

#include "core/wire/filter.hpp"
#include "core/wire/json_text.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

using namespace evstream;

int sign(int x) {
  return (x > 0) - (x < 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = evstream::fuzz::as_text(data, size);
  const std::size_t newline = text.find('\n');
  const std::string_view expression = text.substr(0, newline);
  auto parsed = parse_filter_clause(expression);
  if (const auto* error = std::get_if<FilterError>(&parsed)) {
    FUZZ_CHECK(error->position <= expression.size());
    FUZZ_CHECK(!error->message.empty());
    return 0;
  }
  const FilterClause& clause = std::get<FilterClause>(parsed);
  FUZZ_CHECK(!clause.path.empty());
  FUZZ_CHECK(clause.op == FilterOp::exists ? clause.values.empty() : !clause.values.empty());
  if (newline == std::string_view::npos) return 0;
  const std::string_view body = text.substr(newline + 1);
  const JsonCheck check = check_json(body);
  if (!check.ok || check.kind != JsonKind::object) return 0;
  const std::string minified = minify_json(body);
  const EventFields fields(minified);
  const bool result = matches(clause, fields);
  if (clause.op == FilterOp::eq || clause.op == FilterOp::ne) {
    FilterClause opposite = clause;
    opposite.op = clause.op == FilterOp::eq ? FilterOp::ne : FilterOp::eq;
    FUZZ_CHECK(matches(opposite, fields) == !result);
  }
  std::size_t pairs = 0;
  for (const auto& a : fields.fields()) {
    if (a.kind != JsonKind::number) continue;
    FUZZ_CHECK(compare_json_numbers(a.raw, a.raw) == 0);
    for (const auto& b : fields.fields()) {
      if (b.kind != JsonKind::number || ++pairs > 64) continue;
      FUZZ_CHECK(sign(compare_json_numbers(a.raw, b.raw)) ==
                 -sign(compare_json_numbers(b.raw, a.raw)));
    }
  }
  return 0;
}
