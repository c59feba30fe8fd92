// Field filters; the language is described in filter.hpp.
#include "core/wire/filter.hpp"

#include <algorithm>
#include <cstdint>

namespace evstream {

namespace {

constexpr std::size_t kMaxExpressionBytes = 4096;
constexpr std::size_t kMaxInValues = 1024;
constexpr std::size_t kMaxFieldDepth = 64;  // deeper data is not indexed (never matched)

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
bool is_json_number(std::string_view text) {
  std::size_t i = 0;
  const std::size_t n = text.size();
  if (i < n && text[i] == '-') ++i;
  if (i >= n || !is_digit(text[i])) return false;
  if (text[i] == '0') {
    ++i;
  } else {
    while (i < n && is_digit(text[i])) ++i;
  }
  if (i < n && text[i] == '.') {
    ++i;
    if (i >= n || !is_digit(text[i])) return false;
    while (i < n && is_digit(text[i])) ++i;
  }
  if (i < n && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < n && (text[i] == '+' || text[i] == '-')) ++i;
    if (i >= n || !is_digit(text[i])) return false;
    while (i < n && is_digit(text[i])) ++i;
  }
  return i == n;
}

// Letters, digits, _-$@ and any non-ASCII byte (UTF-8 keys such as "café").
bool is_path_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' || c == '-' ||
         c == '$' || c == '@' || static_cast<unsigned char>(c) >= 0x80;
}

bool is_operator_char(char c) {
  return c == '=' || c == '!' || c == '<' || c == '>' || c == '~';
}

// A JSON number's parts; compare_magnitudes reads them as significant digits and the power of
// ten of the first one, so no number is ever rounded through a double.
struct Decimal {
  bool negative = false;
  std::string_view int_part;
  std::string_view frac_part;
  std::int64_t exponent = 0;  // the e-part, saturated
};

Decimal split_number(std::string_view text) {
  Decimal d;
  std::size_t i = 0;
  if (text[i] == '-') {
    d.negative = true;
    ++i;
  }
  const std::size_t int_start = i;
  while (i < text.size() && is_digit(text[i])) ++i;
  d.int_part = text.substr(int_start, i - int_start);
  if (i < text.size() && text[i] == '.') {
    const std::size_t frac_start = ++i;
    while (i < text.size() && is_digit(text[i])) ++i;
    d.frac_part = text.substr(frac_start, i - frac_start);
  }
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    bool negative_exponent = false;
    if (text[i] == '+' || text[i] == '-') negative_exponent = text[i++] == '-';
    std::int64_t e = 0;
    for (; i < text.size(); ++i) e = std::min<std::int64_t>(e * 10 + (text[i] - '0'), 1LL << 40);
    d.exponent = negative_exponent ? -e : e;
  }
  return d;
}

// The i-th digit of int_part followed by frac_part.
char digit_at(const Decimal& d, std::size_t index) {
  return index < d.int_part.size() ? d.int_part[index] : d.frac_part[index - d.int_part.size()];
}

// |a| vs |b| for numbers split by split_number.
int compare_magnitudes(const Decimal& a, const Decimal& b) {
  auto first_nonzero = [](const Decimal& d) {
    const std::size_t total = d.int_part.size() + d.frac_part.size();
    std::size_t i = 0;
    while (i < total && digit_at(d, i) == '0') ++i;
    return i;
  };
  auto last_nonzero_end = [](const Decimal& d) {
    std::size_t end = d.int_part.size() + d.frac_part.size();
    while (end > 0 && digit_at(d, end - 1) == '0') --end;
    return end;
  };
  const std::size_t a_first = first_nonzero(a);
  const std::size_t b_first = first_nonzero(b);
  const std::size_t a_total = a.int_part.size() + a.frac_part.size();
  const std::size_t b_total = b.int_part.size() + b.frac_part.size();
  const bool a_zero = a_first == a_total;
  const bool b_zero = b_first == b_total;
  if (a_zero || b_zero) return a_zero == b_zero ? 0 : (a_zero ? -1 : 1);
  // The power of ten of the first significant digit decides, then the digits themselves.
  const std::int64_t a_power = static_cast<std::int64_t>(a.int_part.size()) -
                               static_cast<std::int64_t>(a_first) + a.exponent;
  const std::int64_t b_power = static_cast<std::int64_t>(b.int_part.size()) -
                               static_cast<std::int64_t>(b_first) + b.exponent;
  if (a_power != b_power) return a_power < b_power ? -1 : 1;
  const std::size_t a_end = last_nonzero_end(a);
  const std::size_t b_end = last_nonzero_end(b);
  for (std::size_t i = a_first, j = b_first; i < a_end || j < b_end; ++i, ++j) {
    const char x = i < a_end ? digit_at(a, i) : '0';
    const char y = j < b_end ? digit_at(b, j) : '0';
    if (x != y) return x < y ? -1 : 1;
  }
  return 0;
}

bool holds(FilterOp op, int order) {
  switch (op) {
    case FilterOp::eq:
      return order == 0;
    case FilterOp::lt:
      return order < 0;
    case FilterOp::le:
      return order <= 0;
    case FilterOp::gt:
      return order > 0;
    case FilterOp::ge:
      return order >= 0;
    default:
      return false;
  }
}

// One field against one value with =, <, <=, >, >= (ne and in are built on eq).
bool compare_field(const EventFields::Field& field, FilterOp op, const FilterValue& value) {
  if (field.kind == JsonKind::number && value.number) {
    return holds(op, compare_json_numbers(field.raw, value.text));
  }
  if (field.kind == JsonKind::string) {
    // A bare number equals a string of the same text, but does not order against it.
    if (value.number && op != FilterOp::eq) return false;
    return holds(op, field.decoded.compare(value.text));
  }
  if ((field.kind == JsonKind::boolean || field.kind == JsonKind::null) && !value.quoted) {
    return op == FilterOp::eq && field.raw == value.text;
  }
  return false;
}

bool field_matches(const EventFields::Field& field, const FilterClause& clause) {
  switch (clause.op) {
    case FilterOp::exists:
      return true;
    case FilterOp::contains:
      return field.kind == JsonKind::string &&
             field.decoded.find(clause.values.front().text) != std::string::npos;
    case FilterOp::in:
      return std::any_of(clause.values.begin(), clause.values.end(), [&](const FilterValue& v) {
        return compare_field(field, FilterOp::eq, v);
      });
    case FilterOp::ne:
      return compare_field(field, FilterOp::eq, clause.values.front());
    default:
      return compare_field(field, clause.op, clause.values.front());
  }
}

class ExpressionParser {
 public:
  explicit ExpressionParser(std::string_view text) : m_text(text) {}

  std::variant<FilterClause, FilterError> parse() {
    FilterClause clause;
    if (m_text.size() > kMaxExpressionBytes) {
      return fail(kMaxExpressionBytes, "longer than 4096 bytes");
    }
    skip_spaces();
    if (at_word("exists")) {
      m_pos += 6;
      if (!skip_spaces()) return fail(m_pos, "expected a path after exists");
      if (!read_path(clause.path)) return fail(m_pos, "expected a path after exists");
      clause.op = FilterOp::exists;
      return finish(std::move(clause));
    }
    if (!read_path(clause.path)) {
      return fail(m_pos, "expected a path into data (such as camera_id or objects.label)");
    }
    skip_spaces();
    if (!read_operator(clause.op)) {
      return fail(m_pos, "expected an operator: = != < <= > >= ~ in");
    }
    skip_spaces();
    if (clause.op == FilterOp::in) {
      do {
        skip_spaces();
        FilterValue value;
        if (!read_value(value, true)) return fail(m_pos, "expected a value in the in list");
        clause.values.push_back(std::move(value));
        if (clause.values.size() > kMaxInValues) return fail(m_pos, "more than 1024 values");
        skip_spaces();
      } while (consume(','));
      return finish(std::move(clause));
    }
    FilterValue value;
    if (!read_value(value, false)) return fail(m_pos, "expected a value after the operator");
    if (clause.op == FilterOp::contains && value.text.empty()) {
      return fail(m_pos, "~ needs a non-empty string");
    }
    clause.values.push_back(std::move(value));
    return finish(std::move(clause));
  }

 private:
  std::variant<FilterClause, FilterError> finish(FilterClause clause) {
    skip_spaces();
    if (m_pos != m_text.size()) return fail(m_pos, "unexpected text after the expression");
    return clause;
  }

  FilterError fail(std::size_t position, std::string message) const {
    return FilterError{std::string(m_text), std::min(position, m_text.size()), std::move(message)};
  }

  bool skip_spaces() {
    const std::size_t start = m_pos;
    while (m_pos < m_text.size() && (m_text[m_pos] == ' ' || m_text[m_pos] == '\t')) ++m_pos;
    return m_pos > start;
  }

  bool consume(char c) {
    if (m_pos < m_text.size() && m_text[m_pos] == c) {
      ++m_pos;
      return true;
    }
    return false;
  }

  bool at_word(std::string_view word) const {
    return m_text.substr(m_pos, word.size()) == word &&
           (m_pos + word.size() == m_text.size() || m_text[m_pos + word.size()] == ' ' ||
            m_text[m_pos + word.size()] == '\t');
  }

  // NAME(.NAME)*; a name is letters, digits and _-$@.
  bool read_path(std::string& path) {
    const std::size_t start = m_pos;
    for (;;) {
      const std::size_t name_start = m_pos;
      while (m_pos < m_text.size() && is_path_char(m_text[m_pos])) ++m_pos;
      if (m_pos == name_start) {
        m_pos = name_start;
        return false;
      }
      if (!consume('.')) break;
    }
    path.assign(m_text.substr(start, m_pos - start));
    return true;
  }

  bool read_operator(FilterOp& op) {
    static constexpr std::pair<std::string_view, FilterOp> kOps[] = {
        {"!=", FilterOp::ne}, {"<=", FilterOp::le}, {">=", FilterOp::ge},     {"=", FilterOp::eq},
        {"<", FilterOp::lt},  {">", FilterOp::gt},  {"~", FilterOp::contains}};
    for (const auto& [text, value] : kOps) {
      if (m_text.substr(m_pos, text.size()) == text) {
        m_pos += text.size();
        op = value;
        return true;
      }
    }
    if (at_word("in")) {
      m_pos += 2;
      op = FilterOp::in;
      return true;
    }
    return false;
  }

  // A JSON string, or a bare word up to the end (or up to a comma in an `in` list).
  bool read_value(FilterValue& value, bool in_list) {
    if (m_pos < m_text.size() && m_text[m_pos] == '"') {
      std::size_t end = m_pos + 1;
      while (end < m_text.size() && m_text[end] != '"') end += m_text[end] == '\\' ? 2 : 1;
      if (end >= m_text.size()) return false;
      auto decoded = decode_json_string(m_text.substr(m_pos, end + 1 - m_pos));
      if (!decoded) return false;
      value.text = std::move(*decoded);
      value.quoted = true;
      m_pos = end + 1;
      return true;
    }
    const std::size_t start = m_pos;
    if (m_pos < m_text.size() && is_operator_char(m_text[m_pos])) return false;  // "a >> 1"
    while (m_pos < m_text.size() && !(in_list && m_text[m_pos] == ',')) ++m_pos;
    std::size_t end = m_pos;
    while (end > start && (m_text[end - 1] == ' ' || m_text[end - 1] == '\t')) --end;
    if (end == start) return false;
    value.text.assign(m_text.substr(start, end - start));
    value.number = is_json_number(value.text);
    return true;
  }

  std::string_view m_text;
  std::size_t m_pos = 0;
};

}  // namespace

std::string FilterError::describe() const {
  return "bad where \"" + expression + "\" at position " + std::to_string(position) + ": " +
         message;
}

std::variant<FilterClause, FilterError> parse_filter_clause(std::string_view expression) {
  return ExpressionParser(expression).parse();
}

int compare_json_numbers(std::string_view a, std::string_view b) {
  const Decimal x = split_number(a);
  const Decimal y = split_number(b);
  const Decimal zero{false, "0", "", 0};
  auto sign = [&](const Decimal& d) {
    return compare_magnitudes(d, zero) == 0 ? 0 : (d.negative ? -1 : 1);  // -0 is 0
  };
  const int x_sign = sign(x);
  const int y_sign = sign(y);
  if (x_sign != y_sign) return x_sign < y_sign ? -1 : 1;
  const int magnitude = compare_magnitudes(x, y);
  return x_sign < 0 ? -magnitude : magnitude;
}

// A name holding a dot could not be told from a nested path ("a.b" the name, or b inside a), so
// such members are not addressable: one path names at most one place, here and in the store's
// SQL pre-filter.
namespace {
bool addressable(const std::string& key) {
  return !key.empty() && key.find('.') == std::string::npos;
}
}  // namespace

EventFields::EventFields(std::string_view data) {
  std::string path;
  for (const auto& member : top_level_members(data)) {
    if (!addressable(member.key)) continue;
    path = member.key;
    add(path, member.value, 1);
  }
}

void EventFields::add(std::string& path, std::string_view value, std::size_t depth) {
  if (value.empty() || depth > kMaxFieldDepth) return;
  if (value.front() == '{' || value.front() == '[') {
    // The container itself, so `exists PATH` holds for it (even empty); it never compares.
    m_fields.push_back(
        Field{path, value.front() == '{' ? JsonKind::object : JsonKind::array, value, {}});
  }
  if (value.front() == '{') {
    const std::size_t base = path.size();
    for (const auto& member : top_level_members(value)) {
      if (!addressable(member.key)) continue;
      path.resize(base);
      path += '.';
      path += member.key;
      add(path, member.value, depth + 1);
    }
    path.resize(base);
    return;
  }
  if (value.front() == '[') {
    for (const auto element : array_elements(value)) add(path, element, depth + 1);
    return;
  }
  Field field;
  field.path = path;
  field.raw = value;
  if (value.front() == '"') {
    field.kind = JsonKind::string;
    field.decoded = decode_json_string(value).value_or("");
  } else if (value == "true" || value == "false") {
    field.kind = JsonKind::boolean;
  } else if (value == "null") {
    field.kind = JsonKind::null;
  } else if (is_json_number(value)) {
    field.kind = JsonKind::number;
  } else {
    return;  // not valid JSON: nothing to match
  }
  m_fields.push_back(std::move(field));
}

bool matches(const FilterClause& clause, const EventFields& event) {
  bool any = false;
  for (const auto& field : event.fields()) {
    if (field.path != clause.path) continue;
    if (field_matches(field, clause)) {
      any = true;
      break;
    }
  }
  // "!=" is "not =": no element equals it (true when the field is missing).
  return clause.op == FilterOp::ne ? !any : any;
}

bool matches(const Filter& filter, const EventFields& event) {
  return std::all_of(filter.clauses.begin(), filter.clauses.end(),
                     [&](const FilterClause& clause) { return matches(clause, event); });
}

}  // namespace evstream
