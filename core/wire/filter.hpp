#pragma once
// Field filters (`where=EXPR`): one small language over an event's `data`, the same for
// /ws/events, /api/events/stream, GET /api/events, tail and replay.
//
//   EXPR := PATH OP VALUE | PATH in VALUE[,VALUE...] | exists PATH
//   OP   := = | != | < | <= | > | >= | ~            (~ is "contains", for strings)
//   PATH := NAME[.NAME...]                          a dotted path into data; an array anywhere
//                                                   on the path (or at its end) means "any element"
//   VALUE:= a bare word (cam-3, 0.8, true) or a JSON string ("left door", "3")
//
// Numbers compare as numbers, exactly, whatever their size or precision (digits are compared as
// decimals, never rounded through a double); strings compare as strings (bytes of UTF-8). A bare
// value that is a JSON number also equals a string field with the same text (camera_id = 3
// matches 3 and "3"); a quoted value is only ever a string. `!=` is "not =": true when the field
// is missing. Ordering operators never match across kinds.
//
// Evaluating a filter never allocates: the event is indexed once (EventFields), and every
// subscriber's filter is checked against that index.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/wire/json_text.hpp"

namespace evstream {

enum class FilterOp { eq, ne, lt, le, gt, ge, contains, in, exists };

struct FilterValue {
  std::string text;  // decoded string, or the literal's text (number, true, false, null)
  bool quoted = false;
  bool number = false;  // a bare literal that is a valid JSON number
};

struct FilterClause {
  std::string path;  // dotted, e.g. "objects.label"
  FilterOp op = FilterOp::eq;
  std::vector<FilterValue> values;  // one, or the `in` list; none for exists
};

struct FilterError {
  std::string expression;
  std::size_t position = 0;  // 0-based byte offset in `expression`
  std::string message;
  // One line: `bad where "conf >> 1" at position 6: expected a value after the operator`.
  std::string describe() const;
};

// One `where` expression; an error names the expression, the position and what was expected.
std::variant<FilterClause, FilterError> parse_filter_clause(std::string_view expression);

// Every clause must hold (where= is repeatable). Empty: matches everything.
struct Filter {
  std::vector<FilterClause> clauses;
  bool empty() const { return clauses.empty(); }
};

// Every value of one event's data (containers too, for `exists`) under its array-free dotted
// path, built once per event. Views point into the data text, which must outlive the index.
class EventFields {
 public:
  struct Field {
    std::string path;
    JsonKind kind = JsonKind::null;
    std::string_view raw;  // the JSON token as stored (numbers keep every digit)
    std::string decoded;   // strings: the decoded value
  };
  explicit EventFields(std::string_view data);  // data: a minified JSON object
  const std::vector<Field>& fields() const { return m_fields; }

 private:
  void add(std::string& path, std::string_view value, std::size_t depth);
  std::vector<Field> m_fields;
};

bool matches(const FilterClause& clause, const EventFields& event);
bool matches(const Filter& filter, const EventFields& event);

// Compares two JSON number texts exactly: <0, 0, >0. Both must be valid JSON numbers.
int compare_json_numbers(std::string_view a, std::string_view b);

}  // namespace evstream
