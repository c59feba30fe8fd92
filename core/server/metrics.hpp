#pragma once
// The server's own measurements for GET /metrics that the Counters in server_impl.hpp do not hold
// (histograms, per-kind connection totals), and the bucket bounds they are exposed with; the text
// format itself is core/wire/prom_text.hpp. Lives on the service thread; nothing here is
// thread-safe.
#include <cstdint>
#include <span>

#include "core/util/histogram.hpp"
#include "core/wire/prom_text.hpp"

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
  std::uint64_t http_events_in = 0;           // events stored through POST /api/events
  std::uint64_t http_unauthorized = 0;        // 401s, HTTP and WebSocket upgrades
  std::uint64_t forbidden_origins = 0;        // 403s for an Origin not allowed
  std::uint64_t replica_commit_failures = 0;  // cluster mode: replica commits retried (logged)
};

// Bucket bounds used by /metrics: latencies 100us..10s, batch sizes 1..1024 events.
std::span<const std::int64_t> latency_bounds_us();
std::span<const std::int64_t> batch_size_bounds();

}  // namespace evstream
