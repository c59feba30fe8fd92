#include <doctest/doctest.h>

#include "core/server/metrics.hpp"

using namespace evstream;

TEST_CASE("metrics::bounds ascend") {
  for (auto bounds : {latency_bounds_us(), batch_size_bounds()}) {
    for (std::size_t i = 1; i < bounds.size(); ++i) CHECK(bounds[i - 1] < bounds[i]);
  }
}
