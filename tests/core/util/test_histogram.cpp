#include "core/util/histogram.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <random>
#include <vector>

using evstream::Histogram;

namespace {

constexpr double kQuantiles[] = {0.0, 0.001, 0.01, 0.1,   0.25,   0.5,     0.75,
                                 0.9, 0.95,  0.99, 0.999, 0.9999, 0.99999, 1.0};

// Nearest-rank percentile of sorted values: the ceil(q * n)-th smallest, at least the first.
// Quantiles are chosen so q * n is whole for the sizes used here, or safely between integers.
std::int64_t exact_percentile(const std::vector<std::int64_t>& sorted, double q) {
  const auto n = static_cast<double>(sorted.size());
  auto rank = static_cast<std::size_t>(std::llround(q * n));
  if (std::fabs(q * n - static_cast<double>(rank)) > 1e-6) {
    rank = static_cast<std::size_t>(std::ceil(q * n));
  }
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

bool within_one_percent(std::int64_t got, std::int64_t want) {
  return std::llabs(got - want) <= want / 100;
}

void check_percentiles(const Histogram& h, std::vector<std::int64_t> values) {
  std::sort(values.begin(), values.end());
  for (const double q : kQuantiles) {
    const std::int64_t want = exact_percentile(values, q);
    const std::int64_t got = h.percentile(q);
    INFO("q=", q, " want=", want, " got=", got);
    CHECK(within_one_percent(got, want));
  }
}

}  // namespace

TEST_CASE("histogram::empty") {
  const Histogram h;
  CHECK(h.count() == 0);
  CHECK(h.min() == 0);
  CHECK(h.max() == 0);
  CHECK(h.mean() == 0.0);
  CHECK(h.percentile(0.5) == 0);
  CHECK(h.percentile(1.0) == 0);
  CHECK(h.count_at_or_below(1'000'000) == 0);
}

TEST_CASE("histogram::record") {
  Histogram h;

  SUBCASE("one value is every percentile, exactly") {
    h.record(12'345);
    CHECK(h.count() == 1);
    CHECK(h.min() == 12'345);
    CHECK(h.max() == 12'345);
    CHECK(h.mean() == 12'345.0);
    CHECK(h.percentile(0.0) == 12'345);
    CHECK(h.percentile(0.5) == 12'345);
    CHECK(h.percentile(1.0) == 12'345);
  }
  SUBCASE("small values are exact") {
    for (std::int64_t v = 1; v <= 255; ++v) h.record(v);
    CHECK(h.percentile(0.5) == 128);
    CHECK(h.count_at_or_below(100) == 100);
    CHECK(h.count_at_or_below(255) == 255);
  }
  SUBCASE("min, max and mean are exact") {
    for (const std::int64_t v : {7, 1'000'003, 42, 999}) h.record(v);
    CHECK(h.min() == 7);
    CHECK(h.max() == 1'000'003);
    CHECK(h.mean() == doctest::Approx((7 + 1'000'003 + 42 + 999) / 4.0));
  }
  SUBCASE("values below 1 count as 1") {
    h.record(0);
    h.record(-5);
    CHECK(h.count() == 2);
    CHECK(h.min() == 1);
    CHECK(h.max() == 1);
    CHECK(h.percentile(0.5) == 1);
  }
}

TEST_CASE("histogram::percentile within 1%") {
  Histogram h;

  SUBCASE("1..100000") {
    std::vector<std::int64_t> values;
    for (std::int64_t v = 1; v <= 100'000; ++v) {
      values.push_back(v);
      h.record(v);
    }
    check_percentiles(h, values);
    CHECK(h.percentile(0.5) == doctest::Approx(50'000).epsilon(0.01));
    CHECK(h.mean() == doctest::Approx(50'000.5));
  }
  SUBCASE("every 1..100000 value as the median of its own histogram") {
    for (std::int64_t v = 1; v <= 100'000; ++v) {
      Histogram one;
      one.record(1);
      one.record(v);
      one.record(std::int64_t{1} << 40);
      if (!within_one_percent(one.percentile(0.5), v)) {
        FAIL("value ", v, " reported as ", one.percentile(0.5));
      }
    }
  }
  SUBCASE("log-uniform values from 1us to an hour") {
    std::mt19937_64 rng(42);
    std::uniform_real_distribution<double> exponent(0.0, std::log(3'600'000'000.0));
    std::vector<std::int64_t> values;
    for (int i = 0; i < 100'000; ++i) {
      const auto v = static_cast<std::int64_t>(std::exp(exponent(rng)));
      values.push_back(v);
      h.record(v);
    }
    check_percentiles(h, values);
  }
  SUBCASE("q outside [0, 1] is clamped") {
    for (std::int64_t v = 10; v <= 1'000; ++v) h.record(v);
    CHECK(h.percentile(-1.0) == 10);
    CHECK(h.percentile(2.0) == 1'000);
    CHECK(h.percentile(std::nan("")) == 10);
  }
  SUBCASE("percentiles never leave [min, max]") {
    for (int i = 0; i < 10; ++i) h.record(1'000'001);
    CHECK(h.percentile(0.5) == 1'000'001);
    CHECK(h.percentile(0.99) == 1'000'001);
  }
}

TEST_CASE("histogram::range clamping") {
  Histogram h;
  const std::int64_t two_hours = 7'200'000'000;

  SUBCASE("values past an hour keep an exact max") {
    h.record(1'000);
    h.record(two_hours);
    CHECK(h.max() == two_hours);
    CHECK(h.percentile(1.0) == two_hours);
    CHECK(h.mean() == doctest::Approx((1'000.0 + two_hours) / 2));
  }
  SUBCASE("huge values do not overflow anything") {
    const auto huge = std::numeric_limits<std::int64_t>::max();
    h.record(huge);
    h.record(huge);
    h.record(5);
    CHECK(h.count() == 3);
    CHECK(h.max() == huge);
    CHECK(h.min() == 5);
    CHECK(h.percentile(0.5) <= huge);
    CHECK(h.percentile(0.5) >= (std::int64_t{1} << 32) - (std::int64_t{1} << 25));
    CHECK(h.count_at_or_below(1'000) == 1);
  }
  SUBCASE("an hour itself is still within 1%") {
    h.record(1);
    h.record(3'600'000'000);
    h.record(two_hours);
    CHECK(within_one_percent(h.percentile(0.5), 3'600'000'000));
  }
}

TEST_CASE("histogram::merge") {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<std::int64_t> dist(1, 5'000'000);
  Histogram a, b, both;
  for (int i = 0; i < 20'000; ++i) {
    const std::int64_t v = dist(rng);
    (i % 3 == 0 ? a : b).record(v);
    both.record(v);
  }

  SUBCASE("equals recording both") {
    a.merge(b);
    CHECK(a.count() == both.count());
    CHECK(a.min() == both.min());
    CHECK(a.max() == both.max());
    CHECK(a.mean() == doctest::Approx(both.mean()));
    for (const double q : kQuantiles) CHECK(a.percentile(q) == both.percentile(q));
    for (std::int64_t bound = 1; bound < 10'000'000; bound *= 3) {
      CHECK(a.count_at_or_below(bound) == both.count_at_or_below(bound));
    }
  }
  SUBCASE("into an empty histogram copies") {
    Histogram empty;
    empty.merge(both);
    CHECK(empty.count() == both.count());
    CHECK(empty.min() == both.min());
    CHECK(empty.max() == both.max());
    CHECK(empty.percentile(0.9) == both.percentile(0.9));
  }
  SUBCASE("an empty histogram changes nothing") {
    const auto min = a.min();
    const auto max = a.max();
    const auto count = a.count();
    a.merge(Histogram{});
    CHECK(a.min() == min);
    CHECK(a.max() == max);
    CHECK(a.count() == count);
  }
  SUBCASE("with itself doubles the counts") {
    const auto p50 = both.percentile(0.5);
    both.merge(both);
    CHECK(both.count() == 40'000);
    CHECK(both.percentile(0.5) == p50);
  }
}

TEST_CASE("histogram::reset") {
  Histogram h;
  for (std::int64_t v = 1; v <= 1'000; ++v) h.record(v);
  h.reset();
  CHECK(h.count() == 0);
  CHECK(h.min() == 0);
  CHECK(h.max() == 0);
  CHECK(h.mean() == 0.0);
  CHECK(h.percentile(0.5) == 0);
  CHECK(h.count_at_or_below(1'000) == 0);
  h.record(50);
  CHECK(h.min() == 50);
  CHECK(h.max() == 50);
  CHECK(h.count() == 1);
}

TEST_CASE("histogram::count_at_or_below") {
  Histogram h;
  std::vector<std::int64_t> values;
  for (std::int64_t v = 1; v <= 100'000; v += 7) {
    values.push_back(v);
    h.record(v);
  }

  SUBCASE("outside the recorded range it is exact") {
    CHECK(h.count_at_or_below(0) == 0);
    CHECK(h.count_at_or_below(-1) == 0);
    CHECK(h.count_at_or_below(h.max()) == h.count());
    CHECK(h.count_at_or_below(std::numeric_limits<std::int64_t>::max()) == h.count());
  }
  SUBCASE("it counts the bound itself") {
    Histogram one;
    one.record(1'000);
    one.record(5'000);
    CHECK(one.count_at_or_below(999) == 0);
    CHECK(one.count_at_or_below(1'000) == 1);
    CHECK(one.count_at_or_below(4'900) == 1);
    // 4999 shares 5000's bucket [4992, 5023], whose count is included in full.
    CHECK(one.count_at_or_below(4'999) == 2);
    CHECK(one.count_at_or_below(5'000) == 2);
  }
  SUBCASE("it is cumulative and within one bucket of exact") {
    std::uint64_t previous = 0;
    for (const std::int64_t bound :
         {100, 250, 500, 1'000, 2'500, 5'000, 10'000, 25'000, 50'000, 99'999}) {
      const auto got = h.count_at_or_below(bound);
      const auto at_bound = std::upper_bound(values.begin(), values.end(), bound) - values.begin();
      const auto at_one_percent_above =
          std::upper_bound(values.begin(), values.end(), bound + bound / 100) - values.begin();
      INFO("bound=", bound, " got=", got);
      CHECK(got >= previous);
      CHECK(got >= static_cast<std::uint64_t>(at_bound));
      CHECK(got <= static_cast<std::uint64_t>(at_one_percent_above));
      previous = got;
    }
  }
}
