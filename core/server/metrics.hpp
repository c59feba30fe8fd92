#pragma once
// The server's own measurements for GET /metrics that the Counters in server_impl.hpp do not hold
// (histograms, per-kind connection totals), and the bucket bounds they are exposed with; the text
// format itself is core/wire/prom_text.hpp. Each service thread records its own; whichever thread
// answers /metrics or /api/health reads every thread's (Tally and SharedHistogram say how).
#include <atomic>
#include <cstdint>
#include <mutex>
#include <span>

#include "core/util/histogram.hpp"
#include "core/wire/prom_text.hpp"

namespace evstream {

// A count that one thread writes and any thread reads. Relaxed atomics: a scrape needs no order
// between counts, and the owner's increment stays a plain load, add and store (no locked RMW).
class Tally {
 public:
  Tally& operator+=(std::uint64_t n) {
    m_value.store(m_value.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    return *this;
  }
  Tally& operator-=(std::uint64_t n) {
    m_value.store(m_value.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
    return *this;
  }
  Tally& operator++() { return *this += 1; }
  Tally& operator--() { return *this -= 1; }
  std::uint64_t get() const { return m_value.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> m_value{0};
};

// A histogram one thread records into and any thread copies out. The lock is taken once per
// write to a socket (not per message), and is contended only while a scrape copies it.
class SharedHistogram {
 public:
  template <typename Values>
  void record_ages(const Values& since_us, std::int64_t now_us) {
    std::lock_guard lock(m_mutex);
    for (const std::int64_t start : since_us) m_histogram.record(now_us - start);
  }
  void merge_into(Histogram& out) const {
    std::lock_guard lock(m_mutex);
    out.merge(m_histogram);
  }

 private:
  mutable std::mutex m_mutex;
  Histogram m_histogram;
};

// Totals one service thread records for /metrics.
struct ServerMetrics {
  SharedHistogram delivery_us;  // from acceptance to the write into a live subscriber's socket
  Tally subscriber_connections_total;
  Tally publisher_connections_total;
  Tally http_requests_total;
  Tally http_events_in;     // events stored through POST /api/events
  Tally http_unauthorized;  // 401s, HTTP and WebSocket upgrades
  Tally forbidden_origins;  // 403s for an Origin not allowed
};

// Bucket bounds used by /metrics: latencies 100us..10s, batch sizes 1..1024 events.
std::span<const std::int64_t> latency_bounds_us();
std::span<const std::int64_t> batch_size_bounds();

}  // namespace evstream
