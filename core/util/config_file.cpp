#include "core/util/config_file.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace evstream {

namespace {

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
}

// What a left-to-right read of one line's text finds outside quotes: where a '#' comment starts,
// where the first '=' is, the [ ] nesting at the end, and a quote left open (0 when none).
struct Scan {
  std::size_t comment = std::string_view::npos;
  std::size_t equals = std::string_view::npos;
  int depth = 0;
  char open_quote = 0;
};

Scan scan(std::string_view text) {
  Scan result;
  char quote = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quote != 0) {
      if (quote == '"' && c == '\\') {
        ++i;  // an escaped character, e.g. \" (CLI11 keeps the backslash in the value)
      } else if (c == quote) {
        quote = 0;
      }
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '#') {
      result.comment = i;
      break;
    } else if (c == '=' && result.equals == std::string_view::npos) {
      result.equals = i;
    } else if (c == '[') {
      ++result.depth;
    } else if (c == ']') {
      --result.depth;
    }
  }
  result.open_quote = quote;
  return result;
}

std::string unquote(std::string_view key) {
  if (key.size() >= 2 && (key.front() == '"' || key.front() == '\'') && key.back() == key.front())
    return std::string(key.substr(1, key.size() - 2));
  return std::string(key);
}

// Levenshtein distance with adjacent transpositions counted as one edit ("prot" -> "port").
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

// The value after "key =" on lines[i] without its comment; an array that goes on over the following
// lines until its ']' is joined into one line, and `i` moved to its last line.
std::string read_value(const std::vector<std::string_view>& lines, std::size_t& i,
                       std::string_view rest, const std::string& key) {
  const int first = static_cast<int>(i) + 1;
  Scan scanned = scan(rest);
  std::string value(trim(rest.substr(0, std::min(scanned.comment, rest.size()))));
  int depth = scanned.depth;
  while (depth > 0 && scanned.open_quote == 0 && i + 1 < lines.size()) {
    const std::string_view next = trim(lines[++i]);
    scanned = scan(next);
    const std::string_view part = trim(next.substr(0, std::min(scanned.comment, next.size())));
    if (!part.empty()) value += (value.back() == '[' ? "" : " ") + std::string(part);
    depth += scanned.depth;
  }
  if (scanned.open_quote != 0) {
    throw ConfigFileError(static_cast<int>(i) + 1, key + ": a string is not closed: end it with " +
                                                       std::string(1, scanned.open_quote));
  }
  if (depth > 0) throw ConfigFileError(first, key + ": the array is not closed: end it with ]");
  return value;
}

}  // namespace

std::vector<ConfigLine> parse_config_text(std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // a UTF-8 byte order mark
  std::vector<std::string_view> lines;
  for (std::size_t start = 0; start < text.size();) {
    const std::size_t end = std::min(text.find('\n', start), text.size());
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }

  std::vector<ConfigLine> result;
  std::map<std::string, int> seen;  // key -> its line
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const int number = static_cast<int>(i) + 1;
    const std::string_view line = trim(lines[i]);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.front() == '[') {
      throw ConfigFileError(number, "sections such as " + std::string(line) +
                                        " are not used: put every key at the top level");
    }
    const Scan head = scan(line);
    if (head.equals == std::string_view::npos) {
      throw ConfigFileError(number,
                            "expected key = value (strings in quotes; a flag as key = true)");
    }
    ConfigLine entry{number, unquote(trim(line.substr(0, head.equals))), {}};
    if (entry.key.empty()) throw ConfigFileError(number, "a key is missing before '='");
    std::string value = read_value(lines, i, line.substr(head.equals + 1), entry.key);
    if (value.empty()) {
      throw ConfigFileError(
          number, entry.key + " has no value: write " + entry.key + " = VALUE (strings in quotes)");
    }
    if (const auto [it, added] = seen.emplace(entry.key, number); !added) {
      throw ConfigFileError(number, entry.key + " is given twice (also on line " +
                                        std::to_string(it->second) +
                                        "): keep one; several values go in one list, " + entry.key +
                                        " = [\"a\", \"b\"]");
    }
    entry.value = std::move(value);
    result.push_back(std::move(entry));
  }
  return result;
}

std::vector<ConfigLine> read_config_file(const std::string& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    throw ConfigFileError(0, "it is a directory, not a file");
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) throw ConfigFileError(0, std::strerror(errno));
  std::ostringstream text;
  text << file.rdbuf();
  if (file.bad()) throw ConfigFileError(0, std::strerror(errno));
  return parse_config_text(text.str());
}

std::string flag_env_name(std::string_view long_name) {
  std::string name = "EVSTREAM_";
  for (const char c : long_name)
    name += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

bool is_secret_option(std::string_view long_name) {
  return long_name == "token" || (long_name.size() > 6 && long_name.ends_with("-token"));
}

std::string closest_name(std::string_view name, const std::vector<std::string>& names) {
  std::string dashed(name);
  std::replace(dashed.begin(), dashed.end(), '_', '-');
  const std::size_t limit = dashed.size() <= 4 ? 1 : 2;  // short names: only one edit away
  std::string best;
  std::size_t best_distance = limit + 1;
  for (const std::string& candidate : names) {
    const std::size_t distance = edit_distance(dashed, candidate);
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

}  // namespace evstream
