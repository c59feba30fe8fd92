#pragma once
// Prometheus text exposition (format 0.0.4): written by the server for GET /metrics and read back
// by loadtest, which compares its own latency with the server's. Pure text; no I/O, no threads.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/util/histogram.hpp"

namespace evstream {

// Builds the text of one scrape. Each metric family gets its # HELP and # TYPE lines once, then its
// samples; `labels` is the inside of the braces, e.g. `kind="subscriber"`, already escaped.
class PromText {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, std::string_view labels, double value);
  void sample(std::string_view name, std::string_view labels, std::uint64_t value);
  void counter(std::string_view name, std::string_view help, std::uint64_t value);
  void gauge(std::string_view name, std::string_view help, double value);
  // A cumulative histogram with the given upper bounds (in the histogram's units, ascending) plus
  // +Inf, _sum and _count; every value is divided by `unit` (1e6 turns microseconds into seconds).
  void histogram(std::string_view name, std::string_view help, const Histogram& histogram,
                 std::span<const std::int64_t> bounds, double unit);
  const std::string& text() const { return m_text; }

 private:
  void sample_text(std::string_view name, std::string_view labels, std::string_view value);
  std::string m_text;
};

// Label value escaping per the exposition format (backslash, double quote, newline).
std::string prom_label_value(std::string_view value);

// One cumulative bucket of a histogram read back from exposition text: upper bound in the
// metric's unit (infinity for +Inf) and how many samples are at or below it.
struct PromBucket {
  double le = 0;
  double count = 0;
};
// The buckets of histogram `name` in `text` (a /metrics scrape), in the order given; empty when
// the text has none. For loadtest, which reads the server's own delivery figures.
std::vector<PromBucket> read_histogram_buckets(std::string_view text, std::string_view name);

}  // namespace evstream
