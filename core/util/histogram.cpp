#include "core/util/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace evstream {
namespace {

// Layout: values below 256 get one bucket each (exact). Above that, every power of two [2^e,
// 2^(e+1)) is split into 128 equal sub-buckets of width 2^(e-7), so a bucket is never wider than
// 1/128 of its lowest value; reporting its midpoint is within 0.4% of anything recorded in it.
constexpr int kSubBucketBits = 7;
constexpr std::uint64_t kSubBuckets = std::uint64_t{1} << kSubBucketBits;  // 128
constexpr std::uint64_t kExactLimit = 2 * kSubBuckets;                     // 256
// 2^32 - 1 us is about 71.6 minutes: the "~1 hour" range. Larger values share the top bucket.
constexpr std::int64_t kMaxTracked = (std::int64_t{1} << 32) - 1;

constexpr std::size_t bucket_index(std::int64_t value) {
  const auto v = static_cast<std::uint64_t>(std::clamp<std::int64_t>(value, 1, kMaxTracked));
  if (v < kExactLimit) return static_cast<std::size_t>(v);
  const int shift = std::bit_width(v) - 1 - kSubBucketBits;
  // (v >> shift) is in [128, 256), so consecutive octaves follow each other 128 slots apart.
  return static_cast<std::size_t>(static_cast<std::uint64_t>(shift) * kSubBuckets + (v >> shift));
}

constexpr std::size_t kBucketCount = bucket_index(kMaxTracked) + 1;
static_assert(kBucketCount == 3328, "26 KiB per histogram");

std::int64_t bucket_width(std::size_t index) {
  if (index < kExactLimit) return 1;
  return std::int64_t{1} << (index / kSubBuckets - 1);
}

std::int64_t bucket_lowest(std::size_t index) {
  if (index < kExactLimit) return static_cast<std::int64_t>(index);
  const std::size_t shift = index / kSubBuckets - 1;
  return static_cast<std::int64_t>(index - shift * kSubBuckets) << shift;
}

std::int64_t bucket_midpoint(std::size_t index) {
  return bucket_lowest(index) + bucket_width(index) / 2;
}

// Nearest-rank: the ceil(q * n)-th smallest value, at least the first. q * n is snapped to a whole
// number when it is only floating-point noise away from one, so p90 of 100000 values is rank
// 90000 even though 0.9 is stored as 0.9000000000000000222.
std::uint64_t nearest_rank(double q, std::uint64_t count) {
  const long double exact = static_cast<long double>(q) * static_cast<long double>(count);
  const long double whole = std::round(exact);
  const long double rank = std::fabs(exact - whole) <= exact * 1e-12L ? whole : std::ceil(exact);
  return std::clamp<std::uint64_t>(static_cast<std::uint64_t>(rank), 1, count);
}

}  // namespace

Histogram::Histogram() : m_buckets(kBucketCount, 0) {}

void Histogram::record(std::int64_t value_us) {
  const std::int64_t value = std::max<std::int64_t>(value_us, 1);
  ++m_buckets[bucket_index(value)];
  m_min = m_count == 0 ? value : std::min(m_min, value);
  m_max = m_count == 0 ? value : std::max(m_max, value);
  m_sum += static_cast<long double>(value);
  ++m_count;
}

void Histogram::merge(const Histogram& other) {
  if (other.m_count == 0) return;
  for (std::size_t i = 0; i < m_buckets.size(); ++i) m_buckets[i] += other.m_buckets[i];
  m_min = m_count == 0 ? other.m_min : std::min(m_min, other.m_min);
  m_max = m_count == 0 ? other.m_max : std::max(m_max, other.m_max);
  m_sum += other.m_sum;
  m_count += other.m_count;
}

void Histogram::reset() {
  std::fill(m_buckets.begin(), m_buckets.end(), 0);
  m_count = 0;
  m_min = 0;
  m_max = 0;
  m_sum = 0;
}

std::int64_t Histogram::min() const {
  return m_count == 0 ? 0 : m_min;
}

std::int64_t Histogram::max() const {
  return m_count == 0 ? 0 : m_max;
}

double Histogram::mean() const {
  return m_count == 0 ? 0.0 : static_cast<double>(m_sum / static_cast<long double>(m_count));
}

std::int64_t Histogram::percentile(double q) const {
  if (m_count == 0) return 0;
  const double clamped = q > 0 ? std::min(q, 1.0) : 0.0;  // also maps NaN to 0
  const std::uint64_t rank = nearest_rank(clamped, m_count);
  // The smallest and largest values are kept exactly, so their ranks need no bucket.
  if (rank == 1) return m_min;
  if (rank == m_count) return m_max;
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < m_buckets.size(); ++i) {
    seen += m_buckets[i];
    if (seen >= rank) return std::clamp(bucket_midpoint(i), m_min, m_max);
  }
  return m_max;  // unreachable: the buckets add up to m_count
}

std::uint64_t Histogram::count_at_or_below(std::int64_t value_us) const {
  if (m_count == 0 || value_us < m_min) return 0;
  if (value_us >= m_max) return m_count;
  // The bucket holding value_us counts in full, so values up to 1/128 above it may be included.
  const std::size_t last = bucket_index(value_us);
  std::uint64_t total = 0;
  for (std::size_t i = 0; i <= last; ++i) total += m_buckets[i];
  return total;
}

}  // namespace evstream
