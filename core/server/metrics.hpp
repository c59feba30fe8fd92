#pragma once
// Prometheus text exposition (format 0.0.4) for GET /metrics, and the server's own measurements
// that the Counters in server_impl.hpp do not hold (histograms, per-kind connection totals).
// Lives on the service thread; nothing here is thread-safe.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/util/histogram.hpp"

namespace evstream {

// Histograms and totals the service thread records for /metrics.
struct ServerMetrics {
  Histogram store_commit_us;       // one sample per store transaction (StoreWriter samples)
  Histogram store_batch_events;    // events per store transaction
  Histogram ingest_to_enqueue_us;  // from acceptance (NewEvent::time_us) to the subscriber queues
  Histogram delivery_us;  // from acceptance to the write into one subscriber's socket (live only)
  std::uint64_t subscriber_connections_total = 0;
  std::uint64_t publisher_connections_total = 0;
  std::uint64_t http_requests_total = 0;
  std::uint64_t http_events_in = 0;     // events stored through POST /api/events
  std::uint64_t http_unauthorized = 0;  // 401s, HTTP and WebSocket upgrades
  std::uint64_t forbidden_origins = 0;  // 403s for an Origin not allowed
};

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

// Bucket bounds used by /metrics: latencies 100us..10s, batch sizes 1..1024 events.
std::span<const std::int64_t> latency_bounds_us();
std::span<const std::int64_t> batch_size_bounds();

}  // namespace evstream
