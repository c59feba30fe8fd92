// where= as a SQLite pre-filter. Every clause becomes an EXISTS over json_tree() rooted at the
// path's first name: the subtree holds every value the path can reach (arrays anywhere on it
// mean "any element"), and a node is a candidate when its own key is the path's last name or an
// array index. Measured on 1M stored detections, json_tree rooted at one member costs about what
// json_extract does plus half, and unlike json_extract it sees array elements.
#include "core/store/filter_sql.hpp"

#include <cmath>
#include <cstdlib>
#include <string_view>

namespace evstream {
namespace {

constexpr std::string_view kNumber = "t.type IN ('integer','real')";

// Doubles are how SQLite holds JSON numbers; widening the bound by far more than any rounding
// keeps every exact match (matches() then decides exactly).
double margin(double value) {
  return std::fabs(value) * 1e-9 + 1e-300;
}

class ClauseWriter {
 public:
  explicit ClauseWriter(SqlCondition& out) : m_out(out) {}

  void write(const FilterClause& clause) {
    const auto dot = clause.path.find('.');
    const std::string first = clause.path.substr(0, dot);
    const std::string root = "$.\"" + first + "\"";  // path names never hold a quote
    if (clause.op == FilterOp::exists) {
      // Anything under the first name may be what the path reaches.
      m_out.sql += "json_type(data, ?) IS NOT NULL";
      m_out.values.emplace_back(root);
      return;
    }
    const auto last_dot = clause.path.rfind('.');
    const std::string last =
        last_dot == std::string::npos ? clause.path : clause.path.substr(last_dot + 1);
    m_out.sql +=
        "EXISTS (SELECT 1 FROM json_tree(data, ?) AS t WHERE (t.key IS NULL OR t.key = ? OR "
        "typeof(t.key) = 'integer') AND (";
    m_out.values.emplace_back(root);
    m_out.values.emplace_back(last);
    values(clause);
    m_out.sql += "))";
  }

 private:
  void values(const FilterClause& clause) {
    switch (clause.op) {
      case FilterOp::contains:
        text("t.type = 'text' AND instr(t.atom, ?) > 0", clause.values.front().text);
        return;
      case FilterOp::eq:
      case FilterOp::in:
        for (std::size_t i = 0; i < clause.values.size(); ++i) {
          if (i > 0) m_out.sql += " OR ";
          equal(clause.values[i]);
        }
        return;
      default:
        order(clause.op, clause.values.front());
        return;
    }
  }

  void equal(const FilterValue& value) {
    m_out.sql += '(';
    text("t.type = 'text' AND t.atom = ?", value.text);  // a bare number equals its text too
    if (value.number) {
      m_out.sql += " OR ";
      number_between(value.text, true, true);
    } else if (!value.quoted &&
               (value.text == "true" || value.text == "false" || value.text == "null")) {
      m_out.sql += " OR t.type = ?";
      m_out.values.emplace_back(value.text);
    }
    m_out.sql += ')';
  }

  void order(FilterOp op, const FilterValue& value) {
    const bool below = op == FilterOp::lt || op == FilterOp::le;
    if (value.number) {
      // A bare number orders numbers only (never strings, see compare_field).
      number_between(value.text, !below, below);
      return;
    }
    const char* comparison = op == FilterOp::lt   ? "t.type = 'text' AND t.atom < ?"
                             : op == FilterOp::le ? "t.type = 'text' AND t.atom <= ?"
                             : op == FilterOp::gt ? "t.type = 'text' AND t.atom > ?"
                                                  : "t.type = 'text' AND t.atom >= ?";
    text(comparison, value.text);
  }

  // A number node within the value's margin on the chosen sides; any number node when the value
  // does not fit a double (matches() compares such values exactly).
  void number_between(const std::string& number, bool lower, bool upper) {
    const double value = std::strtod(number.c_str(), nullptr);
    m_out.sql += '(';
    m_out.sql += kNumber;
    if (std::isfinite(value)) {
      if (lower) {
        m_out.sql += " AND t.atom >= ?";
        m_out.values.emplace_back(value - margin(value));
      }
      if (upper) {
        m_out.sql += " AND t.atom <= ?";
        m_out.values.emplace_back(value + margin(value));
      }
    }
    m_out.sql += ')';
  }

  void text(const char* sql, const std::string& value) {
    m_out.sql += sql;
    m_out.values.emplace_back(value);
  }

  SqlCondition& m_out;
};

}  // namespace

SqlCondition filter_sql(const Filter& filter) {
  SqlCondition out;
  for (const auto& clause : filter.clauses) {
    if (clause.op == FilterOp::ne) continue;  // "not =" holds for missing fields: no pre-filter
    if (!out.sql.empty()) out.sql += " AND ";
    out.sql += '(';
    ClauseWriter(out).write(clause);
    out.sql += ')';
  }
  if (out.sql.empty()) out.sql = "1";
  return out;
}

}  // namespace evstream
