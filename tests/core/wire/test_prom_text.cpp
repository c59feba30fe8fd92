#include <doctest/doctest.h>

#include <cmath>

#include "core/wire/prom_text.hpp"

using namespace evstream;

TEST_CASE("prom_text::PromText") {
  PromText prom;
  SUBCASE("counter and gauge") {
    prom.counter("evstream_events_in_total", "Events stored.", 42);
    prom.gauge("evstream_queue", "Queued.", 1.5);
    CHECK(prom.text() ==
          "# HELP evstream_events_in_total Events stored.\n"
          "# TYPE evstream_events_in_total counter\n"
          "evstream_events_in_total 42\n"
          "# HELP evstream_queue Queued.\n"
          "# TYPE evstream_queue gauge\n"
          "evstream_queue 1.5\n");
  }
  SUBCASE("labelled family") {
    prom.family("c", "gauge", "Open.");
    prom.sample("c", "kind=\"subscriber\"", std::uint64_t{3});
    prom.sample("c", "kind=\"publisher\"", 0.25);
    CHECK(prom.text() ==
          "# HELP c Open.\n# TYPE c gauge\nc{kind=\"subscriber\"} 3\nc{kind=\"publisher\"} 0.25\n");
  }
  SUBCASE("histogram: cumulative buckets in seconds, +Inf, sum and count") {
    Histogram h;
    h.record(50);         // 50us
    h.record(200);        // 200us
    h.record(3'000'000);  // 3s
    const std::int64_t bounds[] = {100, 1'000, 10'000'000};
    prom.histogram("lat_seconds", "Latency.", h, bounds, 1e6);
    CHECK(prom.text() ==
          "# HELP lat_seconds Latency.\n# TYPE lat_seconds histogram\n"
          "lat_seconds_bucket{le=\"0.0001\"} 1\n"
          "lat_seconds_bucket{le=\"0.001\"} 2\n"
          "lat_seconds_bucket{le=\"10\"} 3\n"
          "lat_seconds_bucket{le=\"+Inf\"} 3\n"
          "lat_seconds_sum 3.00025\n"
          "lat_seconds_count 3\n");
  }
  SUBCASE("empty histogram") {
    Histogram h;
    const std::int64_t bounds[] = {1, 2, 1024};
    prom.histogram("b", "Batch.", h, bounds, 1.0);
    CHECK(prom.text().find(
              "b_bucket{le=\"1024\"} 0\nb_bucket{le=\"+Inf\"} 0\nb_sum 0\nb_count 0\n") !=
          std::string::npos);
  }
}

TEST_CASE("prom_text::prom_label_value") {
  CHECK(prom_label_value("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
}

TEST_CASE("prom_text::read_histogram_buckets reads back what PromText writes") {
  Histogram h;
  h.record(50);
  h.record(1'500);
  h.record(30'000);
  const std::int64_t bounds[] = {100, 250, 500, 1'000, 2'000, 5'000, 10'000'000};
  PromText prom;
  prom.counter("other_total", "Other.", 7);
  prom.histogram("lat_seconds", "Latency.", h, bounds, 1e6);
  prom.histogram("lat_seconds_more", "Another one sharing the prefix.", h, bounds, 1e6);
  const auto buckets = read_histogram_buckets(prom.text(), "lat_seconds");
  REQUIRE(buckets.size() == std::size(bounds) + 1);
  CHECK(buckets[0].le == doctest::Approx(0.0001));
  CHECK(buckets[0].count == 1);
  CHECK(buckets[4].le == doctest::Approx(0.002));  // 2 ms
  CHECK(buckets[4].count == 2);
  CHECK(std::isinf(buckets.back().le));
  CHECK(buckets.back().count == 3);
  CHECK(read_histogram_buckets(prom.text(), "missing").empty());
  CHECK(read_histogram_buckets("x_bucket{le=\"oops\"} 1\nx_bucket{le=\"1\"} z\n", "x").empty());
}
