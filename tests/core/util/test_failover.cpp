#include "core/util/failover.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "core/util/error.hpp"

using evstream::Failover;
using evstream::WsUrl;

namespace {

std::vector<WsUrl> servers(std::initializer_list<const char*> texts) {
  std::vector<WsUrl> out;
  for (const char* text : texts) out.push_back(evstream::parse_ws_url(text, "/ws/events"));
  return out;
}

// The default Backoff: 100ms first, doubling to 5s, +-20% jitter.
bool about(std::int64_t delay_us, std::int64_t base_us) {
  return delay_us >= base_us * 8 / 10 && delay_us <= base_us * 12 / 10;
}

}  // namespace

TEST_CASE("util::Failover") {
  SUBCASE("one server: every failure pauses with a growing backoff, reset when it opens") {
    Failover failover(servers({"ws://a:1"}), std::nullopt);
    CHECK_FALSE(failover.several());
    auto step = failover.failed(1'000'000);
    CHECK_FALSE(step.give_up);
    CHECK(step.pause);
    CHECK(about(step.delay_us, 100'000));
    CHECK(failover.current().host == "a");
    CHECK(about(failover.failed(1'100'000).delay_us, 200'000));
    failover.opened();
    CHECK(about(failover.failed(9'000'000).delay_us, 100'000));
  }
  SUBCASE("several: the next server at once, a pause after a full round") {
    Failover failover(servers({"ws://a:1", "ws://b:2", "ws://c:3"}), std::nullopt);
    CHECK(failover.several());
    CHECK(failover.current().host == "a");
    auto step = failover.failed(0);
    CHECK(step.left == 0);
    CHECK_FALSE(step.pause);
    CHECK(step.delay_us == 0);
    CHECK(failover.current().host == "b");
    step = failover.failed(0);
    CHECK(step.delay_us == 0);
    CHECK(failover.current().host == "c");
    step = failover.failed(0);  // a, b and c all failed: back to a after the backoff
    CHECK(step.left == 2);
    CHECK(step.pause);
    CHECK(about(step.delay_us, 100'000));
    CHECK(failover.current().host == "a");
    CHECK(failover.failed(0).delay_us == 0);
    CHECK(failover.current().host == "b");
  }
  SUBCASE("servers that accept and then close are still paced by rounds") {
    Failover failover(servers({"ws://a:1", "ws://b:2"}), std::nullopt);
    failover.opened();
    CHECK(failover.failed(0).delay_us == 0);  // a dropped: b at once
    failover.opened();
    const auto step = failover.failed(0);  // b dropped too: a pause before a again
    CHECK(step.pause);
    CHECK(about(step.delay_us, 100'000));
    CHECK(failover.current().host == "a");
  }
  SUBCASE("retry timeout: only when no server answered for that long") {
    Failover failover(servers({"ws://a:1", "ws://b:2"}), 1'000'000);
    CHECK_FALSE(failover.failed(10'000'000).give_up);
    CHECK_FALSE(failover.failed(10'500'000).give_up);
    failover.opened();  // b answered: the clock starts again
    CHECK_FALSE(failover.failed(12'000'000).give_up);
    const auto step = failover.failed(12'900'000);
    CHECK_FALSE(step.give_up);
    CHECK(step.delay_us <= 101'000);  // never waits past the deadline
    CHECK(failover.failed(13'000'000).give_up);
  }
  SUBCASE("a pause never waits past the retry deadline") {
    Failover failover(servers({"ws://a:1"}), 50'000);
    const auto step = failover.failed(0);
    CHECK(step.delay_us == 51'000);
  }
  SUBCASE("an empty list is refused") {
    CHECK_THROWS_AS(Failover({}, std::nullopt), evstream::Error);
  }
  SUBCASE("describe names the server left and the next one") {
    Failover one(servers({"ws://a:1"}), std::nullopt);
    auto step = one.failed(0);
    step.delay_us = 100'000;
    CHECK(one.describe(step, "connection lost", "reconnecting") ==
          "ws://a:1/ws/events: connection lost; reconnecting in 0.1s");
    Failover two(servers({"ws://a:1", "ws://b:2?token=s"}), std::nullopt);
    step = two.failed(0);
    CHECK(two.describe(step, "connection lost", "reconnecting") ==
          "ws://a:1/ws/events: connection lost; failing over to ws://b:2/ws/events?token=***");
    step = two.failed(0);
    step.delay_us = 300'000;
    CHECK(two.describe(step, "refused", "reconnecting") ==
          "ws://b:2/ws/events?token=***: refused; failing over to ws://a:1/ws/events in 0.3s");
  }
}
