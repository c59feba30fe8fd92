#include "core/server/metrics.hpp"

#include <array>

namespace evstream {

namespace {

// 2 ms and 20 ms are bounds because they are the delivery targets (README, Performance).
constexpr std::array<std::int64_t, 16> kLatencyBoundsUs = {
    100,    250,     500,     1'000,   2'000,     5'000,     10'000,    20'000,
    50'000, 100'000, 250'000, 500'000, 1'000'000, 2'500'000, 5'000'000, 10'000'000};
constexpr std::array<std::int64_t, 11> kBatchBounds = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};

}  // namespace

std::span<const std::int64_t> latency_bounds_us() {
  return kLatencyBoundsUs;
}

std::span<const std::int64_t> batch_size_bounds() {
  return kBatchBounds;
}

}  // namespace evstream
