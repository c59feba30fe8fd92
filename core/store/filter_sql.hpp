#pragma once
// where= filters as SQL over the stored `data` column, with SQLite's JSON functions. The SQL is a
// pre-filter: it never drops an event the filter matches (no false negatives) but may keep a few
// it does not (numbers are compared as doubles, widened by a rounding margin), so the store
// checks every row it returns with matches() for the exact answer. It keeps most rows from ever
// leaving SQLite, which is where the time of a filtered history query goes.
#include <string>
#include <variant>
#include <vector>

#include "core/wire/filter.hpp"

namespace evstream {

using SqlValue = std::variant<std::string, double>;

struct SqlCondition {
  std::string sql;               // "1" when nothing can be pre-filtered; refers to `data`
  std::vector<SqlValue> values;  // bound to its ?s in order
};

SqlCondition filter_sql(const Filter& filter);

}  // namespace evstream
