#pragma once
// Log-linear latency histogram (HdrHistogram-like): values in microseconds from 1 us to ~1 hour,
// bucketed so any recorded value is reported within 1% relative error. Not thread-safe: one owner
// records, and owners merge at the end.
#include <cstdint>
#include <vector>

namespace evstream {

class Histogram {
 public:
  Histogram();
  void record(std::int64_t value_us);  // values < 1 clamp to 1, values past the range clamp to max
  void merge(const Histogram& other);
  void reset();
  std::uint64_t count() const { return m_count; }
  std::int64_t min() const;  // 0 when empty
  std::int64_t max() const;  // 0 when empty; exact
  double mean() const;       // 0 when empty
  // The value at quantile q in [0, 1] (0.99 for p99), within 1% of the true value; 0 when empty.
  std::int64_t percentile(double q) const;
  // Bucket upper bounds and counts, for Prometheus-style export at the given bounds (cumulative).
  std::uint64_t count_at_or_below(std::int64_t value_us) const;

 private:
  std::vector<std::uint64_t> m_buckets;
  std::uint64_t m_count = 0;
  std::int64_t m_min = 0;
  std::int64_t m_max = 0;
  long double m_sum = 0;
};

}  // namespace evstream
