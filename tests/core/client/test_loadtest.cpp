#include <doctest/doctest.h>

#include <set>

#include "core/client/loadtest.hpp"
#include "core/util/error.hpp"

using namespace evstream;

TEST_CASE("loadtest::parse_slo") {
  SUBCASE("latency, loss, connected and memory checks") {
    const auto checks =
        parse_slo("p99<100ms, loss=0,connected=100%,max<=1s,rss_growth<10MiB,loss<0.5%");
    REQUIRE(checks.size() == 6);
    CHECK(checks[0].name == "p99");
    CHECK(checks[0].op == "<");
    CHECK(checks[0].limit == 100'000);
    CHECK(checks[1].name == "loss");
    CHECK(checks[1].limit == 0);
    CHECK(checks[2].name == "connected%");
    CHECK(checks[2].limit == 100);
    CHECK(checks[3].op == "<=");
    CHECK(checks[3].limit == 1'000'000);
    CHECK(checks[4].limit == 10 * 1024 * 1024);
    CHECK(checks[5].name == "loss%");
    CHECK(checks[5].limit == doctest::Approx(0.5));
  }
  SUBCASE("bad items name themselves") {
    CHECK_THROWS_WITH_AS(parse_slo("p99~5ms"), doctest::Contains("invalid --slo item \"p99~5ms\""),
                         Error);
    CHECK_THROWS_AS(parse_slo("latency<5ms"), Error);
    CHECK_THROWS_AS(parse_slo("loss=x"), Error);
    CHECK(parse_slo("").empty());
  }
}

TEST_CASE("loadtest::evaluate_slo") {
  LoadtestReport report;
  report.clients = 10;
  report.connected = 10;
  report.published = 100;
  report.expected = 1000;
  report.received = 999;
  for (int i = 1; i <= 100; ++i) report.latency_us.record(i * 1000);
  report.server_rss_before = 1'000'000;
  report.server_rss_after = 3'000'000;
  const auto results = evaluate_slo(
      parse_slo("p99<50ms,p50<60ms,loss=0,loss<1%,connected=100%,rss_growth<1MB"), report);
  REQUIRE(results.size() == 6);
  CHECK_FALSE(results[0].pass);
  CHECK(results[1].pass);
  CHECK_FALSE(results[2].pass);
  CHECK(results[2].actual_text == "1 of 1000");
  CHECK(results[3].pass);
  CHECK(results[4].pass);
  CHECK(results[4].actual_text == "10/10");
  CHECK_FALSE(results[5].pass);
  SUBCASE("unknown server memory is skipped, not failed") {
    report.server_rss_after.reset();
    const auto skipped = evaluate_slo(parse_slo("rss_growth<1MB"), report);
    CHECK(skipped[0].actual_text == "unknown");
    CHECK(report_table(report, skipped).find("SKIP") != std::string::npos);
  }
  SUBCASE("report formats carry the figures") {
    const std::string json = report_json(report, results);
    CHECK(json.find(R"("lost":1)") != std::string::npos);
    CHECK(json.find(R"("pass":false)") != std::string::npos);
    CHECK(report_table(report, results).find("FAIL") != std::string::npos);
  }
}

TEST_CASE("loadtest::loadtest_camera_set") {
  std::set<std::vector<std::size_t>> seen;
  for (std::size_t j = 0; j < 1000; ++j) {
    const auto set = loadtest_camera_set(j, 100, 2);
    REQUIRE(set.size() == 2);
    CHECK(set[0] < set[1]);
    CHECK(set[1] < 100);
    seen.insert(set);
  }
  CHECK(seen.size() == 1000);  // a different pair for each of the benchmark's subscribers
  for (std::size_t count = 1; count <= 6; ++count) {
    for (std::size_t j = 0; j < 40; ++j) {
      const auto set = loadtest_camera_set(j, 6, count);
      CHECK(set.size() == count);
      CHECK(std::set<std::size_t>(set.begin(), set.end()).size() == count);
    }
  }
  CHECK(loadtest_camera_set(3, 0, 2).empty());
  CHECK(loadtest_camera_set(3, 1, 2) == std::vector<std::size_t>{0});
}

TEST_CASE("loadtest::loadtest_loop_options") {
  LoadtestOptions options;
  SUBCASE("a loop expecting a message now and then reads it as soon as it arrives") {
    options.rate = 10;
    const auto loop = loadtest_loop_options(options, 50);  // 500 messages/s
    CHECK(loop.collect_us == 0);
    CHECK(loop.epoll);
    CHECK(loop.max_connections == 58);
  }
  SUBCASE("a busy loop looks at its sockets at most every 0.1 ms") {
    options.rate = 200;
    CHECK(loadtest_loop_options(options, 500).collect_us == 100);  // 100,000 messages/s
    CHECK(loadtest_loop_options(options, 99).collect_us == 0);     // 19,800 messages/s
    CHECK(loadtest_loop_options(options, 100).collect_us == 100);  // 20,000 messages/s
  }
  SUBCASE("at full speed the loop is busy") {
    options.rate = 0;
    CHECK(loadtest_loop_options(options, 1).collect_us == 100);
  }
}

TEST_CASE("loadtest::loadtest_shard_clients") {
  LoadtestOptions options;
  options.clients = 1001;
  options.threads = 3;
  REQUIRE(loadtest_shard_count(options) == 3);
  CHECK(loadtest_shard_clients(options, 0) == 334);  // the first loop, beside the publisher
  CHECK(loadtest_shard_clients(options, 1) == 334);
  CHECK(loadtest_shard_clients(options, 2) == 333);
  options.clients = 2;
  CHECK(loadtest_shard_count(options) == 2);  // never a loop without a subscriber
  options.threads = 0;
  CHECK(loadtest_shard_count(options) == 1);
}
