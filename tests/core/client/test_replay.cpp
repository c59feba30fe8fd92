#include "core/client/replay.hpp"

#include <doctest/doctest.h>

#include <unistd.h>
#include "tests/core/temp_dir.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

namespace {

using namespace evstream;

constexpr std::int64_t kT0 = 1'795'000'000'000'000;  // some time in 2026, in microseconds

using evstream::testing::TempDir;

// A store with `count` events: ids 1..count, topic "a" for odd ids and "b" for even ones, one
// second apart from kT0.
std::string make_store(const TempDir& dir, int count) {
  const std::string path = dir.file("events.db");
  Store store(path);
  std::vector<NewEvent> batch;
  for (int i = 1; i <= count; ++i) {
    batch.push_back(NewEvent{i % 2 == 1 ? "a" : "b", R"({"i":)" + std::to_string(i) + "}",
                             std::nullopt, kT0 + std::int64_t{i - 1} * 1'000'000});
  }
  store.append(batch);
  return path;
}

std::vector<EventId> ids_of(RecordSource& source, int* pages = nullptr) {
  std::vector<EventId> ids;
  std::vector<Record> page;
  while (source.next_page(page)) {
    if (pages != nullptr) ++*pages;
    for (const auto& record : page) ids.push_back(record.id);
  }
  return ids;
}

std::vector<EventId> range(EventId first, EventId last) {
  std::vector<EventId> ids;
  for (EventId id = first; id <= last; ++id) ids.push_back(id);
  return ids;
}

// Pages handed out as given.
class VectorSource final : public RecordSource {
 public:
  explicit VectorSource(std::vector<std::vector<Record>> pages) : m_pages(std::move(pages)) {}
  bool next_page(std::vector<Record>& page) override {
    if (m_next == m_pages.size()) return false;
    page = m_pages[m_next++];
    return true;
  }

 private:
  std::vector<std::vector<Record>> m_pages;
  std::size_t m_next = 0;
};

// What replay_to_file writes, through an in-memory FILE*.
class MemoryOut {
 public:
  MemoryOut() : m_file(open_memstream(&m_buffer, &m_size)) { REQUIRE(m_file != nullptr); }
  ~MemoryOut() {
    std::fclose(m_file);
    std::free(m_buffer);
  }
  MemoryOut(const MemoryOut&) = delete;
  MemoryOut& operator=(const MemoryOut&) = delete;
  std::FILE* file() const { return m_file; }
  std::string text() {
    std::fflush(m_file);
    return std::string(m_buffer, m_size);
  }

 private:
  char* m_buffer = nullptr;
  std::size_t m_size = 0;
  std::FILE* m_file;
};

}  // namespace

TEST_CASE("replay::Pacer") {
  std::int64_t now = 5'000'000;
  int clock_reads = 0;
  const auto clock = [&] {
    ++clock_reads;
    return now;
  };
  SUBCASE("speed 0 never waits and never reads the clock") {
    Pacer pacer(0, clock);
    CHECK(pacer.delay_us(kT0) == 0);
    CHECK(pacer.delay_us(kT0 + 3'600'000'000) == 0);
    CHECK(clock_reads == 0);
  }
  SUBCASE("speed 1 keeps the original spacing, anchored at the first record") {
    Pacer pacer(1, clock);
    CHECK(pacer.delay_us(kT0) == 0);
    CHECK(pacer.delay_us(kT0 + 200'000) == 200'000);
    now += 200'000;
    CHECK(pacer.delay_us(kT0 + 200'000) == 0);
    CHECK(pacer.delay_us(kT0 + 500'000) == 300'000);
  }
  SUBCASE("speed 10 is ten times faster, speed 0.5 half as fast") {
    Pacer fast(10, clock);
    fast.delay_us(kT0);
    CHECK(fast.delay_us(kT0 + 1'000'000) == 100'000);
    Pacer slow(0.5, clock);
    slow.delay_us(kT0);
    CHECK(slow.delay_us(kT0 + 1'000'000) == 2'000'000);
  }
  SUBCASE("a late wake-up does not accumulate: later records stay on schedule") {
    Pacer pacer(2, clock);
    pacer.delay_us(kT0);
    CHECK(pacer.delay_us(kT0 + 200'000) == 100'000);
    now += 150'000;  // overslept by 50 ms
    CHECK(pacer.delay_us(kT0 + 400'000) == 50'000);
    now += 50'000;
    CHECK(pacer.delay_us(kT0 + 400'000) == 0);
    now += 500'000;  // far behind: everything due is due now
    CHECK(pacer.delay_us(kT0 + 600'000) == 0);
    CHECK(pacer.delay_us(kT0 + 1'800'000) == 200'000);
  }
  SUBCASE("a time before the first record (the server's clock stepped back) is due at once") {
    Pacer pacer(1, clock);
    pacer.delay_us(kT0);
    CHECK(pacer.delay_us(kT0 - 10'000'000) == 0);
  }
  SUBCASE("a tiny speed does not overflow") {
    Pacer pacer(1e-12, clock);
    pacer.delay_us(kT0);
    CHECK(pacer.delay_us(kT0 + 3'600'000'000) > 0);
  }
}

TEST_CASE("replay::parse_replay_bound") {
  const std::int64_t now = kT0;
  CHECK(std::get<EventId>(*parse_replay_bound("42", now)) == 42);
  CHECK(std::get<EventId>(*parse_replay_bound("0", now)) == 0);
  CHECK_FALSE(parse_replay_bound("99999999999999999999", now));
  CHECK(std::get<ReplayTime>(*parse_replay_bound("2026-11-25T17:00:00Z", now)).unix_us ==
        *parse_rfc3339("2026-11-25T17:00:00Z"));
  CHECK(std::get<ReplayTime>(*parse_replay_bound("2026-11-25T18:00:00+01:00", now)).unix_us ==
        *parse_rfc3339("2026-11-25T17:00:00Z"));
  CHECK(std::get<ReplayTime>(*parse_replay_bound("90m", now)).unix_us == now - 5'400'000'000);
  CHECK(std::get<ReplayTime>(*parse_replay_bound("500ms", now)).unix_us == now - 500'000);
  CHECK_FALSE(parse_replay_bound("1.5", now));  // no unit: ambiguous
  CHECK_FALSE(parse_replay_bound("-5", now));
  CHECK_FALSE(parse_replay_bound("yesterday", now));
  CHECK_FALSE(parse_replay_bound("", now));
}

TEST_CASE("replay::replay_query") {
  ReplayFilter filter;
  filter.after = 3;
  filter.topics = {"a"};
  Query query = replay_query(filter, 100, 50);
  CHECK(query.after == 3);
  CHECK(query.before == 101);  // the snapshot: nothing stored later
  CHECK(query.order == Order::asc);
  CHECK(query.limit == 50);
  CHECK(query.topics == std::vector<std::string>{"a"});
  filter.until_id = 10;  // inclusive
  CHECK(replay_query(filter, 100, 50).before == 11);
  filter.until_id = 500;
  CHECK(replay_query(filter, 100, 5000).before == 101);
  CHECK(replay_query(filter, 100, 5000).limit == kMaxQueryLimit);
}

TEST_CASE("replay::StoreSource") {
  TempDir dir;
  const std::string path = make_store(dir, 10);
  SUBCASE("pages through everything in id order") {
    StoreSource source(path, {}, 3);
    int pages = 0;
    CHECK(ids_of(source, &pages) == range(1, 10));
    CHECK(pages == 4);  // 3 + 3 + 3 + 1
    std::vector<Record> page;
    CHECK_FALSE(source.next_page(page));
    CHECK(page.empty());
  }
  SUBCASE("a large store streams in full pages") {
    TempDir big_dir;
    const std::string big = make_store(big_dir, 2500);
    StoreSource source(big, {});
    int pages = 0;
    CHECK(ids_of(source, &pages) == range(1, 2500));
    CHECK(pages == 3);
  }
  SUBCASE("--since ID is exclusive, --until ID inclusive") {
    ReplayFilter filter;
    filter.after = 3;
    filter.until_id = 7;
    StoreSource source(path, filter, 2);
    CHECK(ids_of(source) == range(4, 7));
    filter.after = 7;
    StoreSource empty(path, filter, 2);
    CHECK(ids_of(empty).empty());
  }
  SUBCASE("times are inclusive at both ends") {
    ReplayFilter filter;
    filter.since_us = kT0 + 2'000'000;  // id 3
    filter.until_us = kT0 + 5'000'000;  // id 6
    StoreSource source(path, filter, 2);
    CHECK(ids_of(source) == range(3, 6));
  }
  SUBCASE("topics") {
    ReplayFilter filter;
    filter.topics = {"b"};
    StoreSource source(path, filter, 2);
    CHECK(ids_of(source) == std::vector<EventId>{2, 4, 6, 8, 10});
    filter.topics = {"a", "b"};
    StoreSource both(path, filter, 4);
    CHECK(ids_of(both) == range(1, 10));
    filter.topics = {"c"};
    StoreSource none(path, filter, 4);
    CHECK(ids_of(none).empty());
  }
  SUBCASE("events stored after the first page are not replayed") {
    StoreSource source(path, {}, 4);
    std::vector<Record> page;
    REQUIRE(source.next_page(page));
    Store writer(path);
    writer.append(std::vector<NewEvent>{{"a", "{}", std::nullopt, kT0 + 60'000'000}});
    std::vector<EventId> rest;
    while (source.next_page(page)) {
      for (const auto& record : page) rest.push_back(record.id);
    }
    CHECK(rest == range(5, 10));
  }
  SUBCASE("records keep topic, time and data") {
    StoreSource source(path, {}, 1);
    std::vector<Record> page;
    REQUIRE(source.next_page(page));
    REQUIRE(page.size() == 1);
    CHECK(page[0].topic == "a");
    CHECK(page[0].time_us == kT0);
    CHECK(page[0].data == R"({"i":1})");
  }
  SUBCASE("a missing file is an error") {
    CHECK_THROWS_AS(StoreSource(dir.file("missing.db"), {}), Error);
  }
}

TEST_CASE("replay::replay_to_file") {
  const Record first{1, "a", kT0, R"({"n":1.10})"};
  const Record second{2, "b", kT0 + 1000, R"({"s":"x"})"};
  const Record third{3, "a", kT0 + 2000, "{}"};
  StopFlag stop;
  SUBCASE("NDJSON records across pages") {
    VectorSource source({{first, second}, {}, {third}});
    Pacer pacer(0);
    MemoryOut out;
    const auto result = replay_to_file(source, pacer, stop, out.file());
    CHECK(result.end == ReplayResult::End::done);
    CHECK(result.records == 3);
    CHECK(out.text() ==
          record_json(first) + "\n" + record_json(second) + "\n" + record_json(third) + "\n");
  }
  SUBCASE("--data-only writes the data objects") {
    VectorSource source({{first, second, third}});
    Pacer pacer(0);
    MemoryOut out;
    replay_to_file(source, pacer, stop, out.file(), ReplayFormat::data);
    CHECK(out.text() == "{\"n\":1.10}\n{\"s\":\"x\"}\n{}\n");
  }
  SUBCASE("paced by the records' times") {
    VectorSource source({{first, {2, "a", kT0 + 40'000, "{}"}, {3, "a", kT0 + 80'000, "{}"}}});
    Pacer pacer(1);
    MemoryOut out;
    const auto start = Pacer::monotonic_now_us();
    CHECK(replay_to_file(source, pacer, stop, out.file()).records == 3);
    const auto took = Pacer::monotonic_now_us() - start;
    CHECK(took >= 80'000);
    CHECK(took < 2'000'000);
  }
  SUBCASE("a stop ends a wait at once") {
    VectorSource source({{first, {2, "a", kT0 + 60'000'000, "{}"}}});
    Pacer pacer(1);
    MemoryOut out;
    const auto start = Pacer::monotonic_now_us();
    std::thread stopper([&stop] {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      stop.request();
    });
    const auto result = replay_to_file(source, pacer, stop, out.file());
    stopper.join();
    CHECK(result.end == ReplayResult::End::interrupted);
    CHECK(result.records == 1);
    CHECK(Pacer::monotonic_now_us() - start < 5'000'000);
    CHECK(out.text() == record_json(first) + "\n");  // written before the wait
  }
  SUBCASE("a closed reader (EPIPE) ends it quietly") {
    const auto old_handler = std::signal(SIGPIPE, SIG_IGN);
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    close(fds[0]);
    std::FILE* file = fdopen(fds[1], "w");
    REQUIRE(file != nullptr);
    VectorSource source({{first, second}});
    Pacer pacer(0);
    const auto result = replay_to_file(source, pacer, stop, file);
    CHECK(result.end == ReplayResult::End::output_closed);
    std::fclose(file);
    std::signal(SIGPIPE, old_handler);
  }
}
