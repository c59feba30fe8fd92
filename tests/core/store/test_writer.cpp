#include "core/store/writer.hpp"

#include <doctest/doctest.h>

#include <sqlite3.h>
#include "tests/core/temp_dir.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>

namespace {

using namespace evstream;
using namespace std::chrono_literals;

using evstream::testing::TempDir;

// The writer's notify callback. Counts calls so a test can wait for the next batch, and can hold
// the store thread inside notify (`hold`) so the queue fills up deterministically.
class Notifier {
 public:
  explicit Notifier(bool hold = false) : m_hold(hold) {}
  std::function<void()> callback() {
    return [this] { notify(); };
  }
  void notify() {
    std::unique_lock lock(m_mutex);
    ++m_calls;
    m_changed.notify_all();
    m_changed.wait(lock, [this] { return !m_hold; });
  }
  void release() {
    {
      std::lock_guard lock(m_mutex);
      m_hold = false;
    }
    m_changed.notify_all();
  }
  std::uint64_t calls() {
    std::lock_guard lock(m_mutex);
    return m_calls;
  }
  // Waits until notify has run more than `seen` times; false after `deadline`.
  bool wait_past(std::uint64_t seen, std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(m_mutex);
    return m_changed.wait_until(lock, deadline, [&] { return m_calls > seen; });
  }

 private:
  std::mutex m_mutex;
  std::condition_variable m_changed;
  std::uint64_t m_calls = 0;
  bool m_hold;
};

// Releases a held Notifier when the test leaves its scope (also on a failed REQUIRE), before the
// writer declared ahead of it joins its thread.
struct ReleaseOnExit {
  Notifier& notifier;
  ~ReleaseOnExit() { notifier.release(); }
};

// Takes committed events until `count` arrived or 5 s passed.
std::vector<Committed> collect(StoreWriter& writer, Notifier& notifier, std::size_t count) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  std::vector<Committed> all;
  for (;;) {
    const auto seen = notifier.calls();
    for (auto& committed : writer.take_committed()) all.push_back(std::move(committed));
    if (all.size() >= count || !notifier.wait_past(seen, deadline)) break;
  }
  CHECK(all.size() == count);
  return all;
}

NewEvent make_event(std::string data, std::string topic = "a",
                    std::optional<std::string> key = {}) {
  return NewEvent{std::move(topic), std::move(data), std::move(key), now_unix_us()};
}

std::int64_t stored_events(const std::string& path) {
  return Store(path, Store::Mode::read_only).stats().events;
}

}  // namespace

TEST_CASE("store_writer: commits in submission order and keeps tags") {
  Notifier notifier;
  StoreWriterOptions options;
  options.max_batch_events = 64;
  StoreWriter writer(Store(":memory:"), options, notifier.callback());
  CHECK(writer.drained());
  constexpr std::size_t n = 1'000;
  for (std::size_t i = 0; i < n; ++i) {
    REQUIRE(writer.submit(make_event("{\"i\":" + std::to_string(i) + "}"), 1'000 + i) ==
            StoreWriter::SubmitResult::ok);
  }
  const auto committed = collect(writer, notifier, n);
  for (std::size_t i = 0; i < committed.size(); ++i) {
    CHECK(committed[i].tag == 1'000 + i);
    CHECK(committed[i].result.id == static_cast<EventId>(i) + 1);
    CHECK(committed[i].event.data == "{\"i\":" + std::to_string(i) + "}");
    CHECK_FALSE(committed[i].result.duplicate);
    CHECK_FALSE(committed[i].error.has_value());
  }
  CHECK(writer.drained());
  CHECK(writer.batches_committed() >= (n + 63) / 64);
  // The last batch's notify runs after its events can be taken: it may still be on its way.
  CHECK(notifier.wait_past(writer.batches_committed() - 1, std::chrono::steady_clock::now() + 5s));
  CHECK(notifier.calls() == writer.batches_committed());
  std::size_t sampled = 0;
  for (const auto& sample : writer.take_batch_samples()) {
    CHECK(sample.events <= 64);
    CHECK(sample.commit_us >= 0);
    sampled += sample.events;
  }
  CHECK(sampled == n);
  CHECK(writer.take_batch_samples().empty());
}

TEST_CASE("store_writer: a repeated key is acknowledged with the first id") {
  Notifier notifier;
  StoreWriter writer(Store(":memory:"), {}, notifier.callback());
  writer.submit(make_event("{\"n\":1}", "a", "k"), 1);
  writer.submit(make_event("{\"n\":2}", "a", "k"), 2);
  const auto committed = collect(writer, notifier, 2);
  REQUIRE(committed.size() == 2);
  CHECK(committed[1].result.duplicate);
  CHECK(committed[1].result.id == committed[0].result.id);
}

TEST_CASE("store_writer: submit answers full past the bounds") {
  Notifier notifier(true);
  StoreWriterOptions options;
  options.max_queued_events = 4;
  options.max_queued_bytes = 100;
  StoreWriter writer(Store(":memory:"), options, notifier.callback());
  ReleaseOnExit release{notifier};
  // The first event's batch holds the store thread inside notify, so the queue only grows.
  REQUIRE(writer.submit(make_event("{}"), 0) == StoreWriter::SubmitResult::ok);
  REQUIRE(notifier.wait_past(0, std::chrono::steady_clock::now() + 5s));
  std::size_t accepted = 1;
  SUBCASE("events") {
    for (int i = 0; i < 4; ++i)
      CHECK(writer.submit(make_event("{}"), 1) == StoreWriter::SubmitResult::ok);
    CHECK(writer.submit(make_event("{}"), 2) == StoreWriter::SubmitResult::full);
    CHECK(writer.queued() == 4);
    accepted += 4;
  }
  SUBCASE("bytes") {
    CHECK(writer.submit(make_event(std::string(60, ' ')), 1) == StoreWriter::SubmitResult::ok);
    CHECK(writer.submit(make_event(std::string(41, ' ')), 2) == StoreWriter::SubmitResult::full);
    CHECK(writer.submit(make_event(std::string(40, ' ')), 3) == StoreWriter::SubmitResult::ok);
    CHECK(writer.submit(make_event(" "), 4) == StoreWriter::SubmitResult::full);
    accepted += 2;
  }
  notifier.release();
  CHECK(collect(writer, notifier, accepted).size() == accepted);
  CHECK(writer.submit(make_event("{}"), 5) == StoreWriter::SubmitResult::ok);
}

TEST_CASE("store_writer: submit_all queues every event or none") {
  Notifier notifier(true);
  StoreWriterOptions options;
  options.max_queued_events = 4;
  options.max_queued_bytes = 100;
  StoreWriter writer(Store(":memory:"), options, notifier.callback());
  ReleaseOnExit release{notifier};
  REQUIRE(writer.submit(make_event("{}"), 0) == StoreWriter::SubmitResult::ok);
  REQUIRE(notifier.wait_past(0, std::chrono::steady_clock::now() + 5s));
  std::vector<NewEvent> three{make_event("{\"n\":1}"), make_event("{\"n\":2}"),
                              make_event("{\"n\":3}")};
  REQUIRE(writer.submit(make_event("{}"), 1) == StoreWriter::SubmitResult::ok);
  REQUIRE(writer.submit(make_event("{}"), 1) == StoreWriter::SubmitResult::ok);
  // Two queued, three more do not fit: none goes in, and the events stay with the caller.
  CHECK(writer.submit_all(three, 2) == StoreWriter::SubmitResult::full);
  CHECK(writer.queued() == 2);
  CHECK(three[2].data == "{\"n\":3}");
  three.pop_back();
  CHECK(writer.submit_all(three, 2) == StoreWriter::SubmitResult::ok);
  CHECK(writer.queued() == 4);
  notifier.release();
  const auto committed = collect(writer, notifier, 5);
  REQUIRE(committed.size() == 5);
  CHECK(committed[3].tag == 2);
  CHECK(committed[3].event.data == "{\"n\":1}");
  CHECK(committed[4].event.data == "{\"n\":2}");
  writer.close();
  std::vector<NewEvent> late{make_event("{}")};
  CHECK(writer.submit_all(late, 3) == StoreWriter::SubmitResult::closed);
}

TEST_CASE("store_writer: submit_wait waits for room instead of answering full") {
  Notifier notifier(true);
  StoreWriterOptions options;
  options.max_queued_events = 2;
  StoreWriter writer(Store(":memory:"), options, notifier.callback());
  ReleaseOnExit release{notifier};
  REQUIRE(writer.submit(make_event("{}"), 0) == StoreWriter::SubmitResult::ok);
  REQUIRE(notifier.wait_past(0, std::chrono::steady_clock::now() + 5s));
  REQUIRE(writer.submit_wait(make_event("{}"), 1) == StoreWriter::SubmitResult::ok);
  REQUIRE(writer.submit_wait(make_event("{}"), 2) == StoreWriter::SubmitResult::ok);
  std::atomic<bool> returned{false};
  StoreWriter::SubmitResult result = StoreWriter::SubmitResult::full;
  std::thread feeder([&] {
    result = writer.submit_wait(make_event("{}"), 3);
    returned = true;
  });
  // The store thread is held inside notify, so nothing leaves the full queue: the feeder waits.
  CHECK_FALSE(returned.load());
  CHECK(writer.queued() == 2);
  notifier.release();
  feeder.join();
  CHECK(result == StoreWriter::SubmitResult::ok);
  const auto committed = collect(writer, notifier, 4);
  CHECK(committed.back().tag == 3);
}

TEST_CASE("store_writer: close wakes a waiting submit_wait") {
  Notifier notifier(true);
  StoreWriterOptions options;
  options.max_queued_events = 1;
  StoreWriter writer(Store(":memory:"), options, notifier.callback());
  ReleaseOnExit release{notifier};
  REQUIRE(writer.submit(make_event("{}"), 0) == StoreWriter::SubmitResult::ok);
  REQUIRE(notifier.wait_past(0, std::chrono::steady_clock::now() + 5s));
  REQUIRE(writer.submit(make_event("{}"), 1) == StoreWriter::SubmitResult::ok);
  StoreWriter::SubmitResult result = StoreWriter::SubmitResult::ok;
  std::thread feeder([&] { result = writer.submit_wait(make_event("{}"), 2); });
  writer.close();
  feeder.join();
  CHECK(result == StoreWriter::SubmitResult::closed);
}

TEST_CASE("store_writer: drained and closed") {
  Notifier notifier;
  StoreWriter writer(Store(":memory:"), {}, notifier.callback());
  CHECK(writer.drained());
  writer.submit(make_event("{}"), 1);
  CHECK_FALSE(writer.drained());  // queued, committing, or waiting in take_committed
  collect(writer, notifier, 1);
  CHECK(writer.drained());
  writer.close();
  writer.close();
  CHECK(writer.submit(make_event("{}"), 2) == StoreWriter::SubmitResult::closed);
  CHECK(writer.drained());
}

TEST_CASE("store_writer: close commits what is queued") {
  TempDir dir;
  const auto path = dir.file("x.db");
  Notifier notifier(true);
  {
    StoreWriter writer(Store(path), {}, notifier.callback());
    ReleaseOnExit release{notifier};
    writer.submit(make_event("{}"), 0);
    REQUIRE(notifier.wait_past(0, std::chrono::steady_clock::now() + 5s));
    for (std::uint64_t tag = 1; tag <= 10; ++tag) writer.submit(make_event("{}"), tag);
    writer.close();
    CHECK(writer.submit(make_event("{}"), 11) == StoreWriter::SubmitResult::closed);
    notifier.release();
    const auto committed = collect(writer, notifier, 11);
    CHECK(committed.back().tag == 10);
    CHECK(committed.back().result.id == 11);
  }
  CHECK(stored_events(path) == 11);
}

TEST_CASE("store_writer: a failed transaction marks every event of its batch") {
  TempDir dir;
  const auto path = dir.file("x.db");
  Store store(path);
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &raw) == SQLITE_OK);
  const auto rc = sqlite3_exec(raw,
                               "CREATE TRIGGER fail BEFORE INSERT ON events WHEN NEW.topic = "
                               "'boom' BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
                               nullptr, nullptr, nullptr);
  sqlite3_close(raw);
  REQUIRE(rc == SQLITE_OK);

  Notifier notifier(true);
  StoreWriter writer(std::move(store), {}, notifier.callback());
  ReleaseOnExit release{notifier};
  writer.submit(make_event("{}"), 0);
  REQUIRE(notifier.wait_past(0, std::chrono::steady_clock::now() + 5s));
  writer.submit(make_event("{}"), 1);  // these three queue up behind the held batch: one batch
  writer.submit(make_event("{}", "boom"), 2);
  writer.submit(make_event("{}"), 3);
  notifier.release();
  const auto committed = collect(writer, notifier, 4);
  REQUIRE(committed.size() == 4);
  CHECK_FALSE(committed[0].error.has_value());
  for (std::size_t i = 1; i < 4; ++i) {
    REQUIRE(committed[i].error.has_value());
    CHECK(committed[i].error->find("injected failure") != std::string::npos);
    CHECK(committed[i].tag == i);
  }
  CHECK(writer.batches_committed() == 1);
  writer.submit(make_event("{}"), 4);
  const auto after = collect(writer, notifier, 1);
  REQUIRE(after.size() == 1);
  CHECK(after[0].result.id == 2);
}

TEST_CASE("store_writer: a replica's failed batch is retried until it commits, never skipped") {
  TempDir dir;
  const auto path = dir.file("x.db");
  Store store(path);
  sqlite3* control = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &control) == SQLITE_OK);
  auto exec = [&](const char* sql) {
    return sqlite3_exec(control, sql, nullptr, nullptr, nullptr);
  };
  REQUIRE(exec("CREATE TABLE fault(on_ INTEGER); INSERT INTO fault VALUES(1);") == SQLITE_OK);
  REQUIRE(exec("CREATE TRIGGER fail BEFORE INSERT ON events WHEN (SELECT on_ FROM fault) = 1 "
               "BEGIN SELECT RAISE(ABORT, 'disk full (injected)'); END") == SQLITE_OK);

  Notifier notifier;
  StoreWriter writer(std::move(store), {}, notifier.callback());
  NewEvent first = make_event("{\"n\":1}");
  first.id = 7;  // numbered by the log of record
  NewEvent second = make_event("{\"n\":2}");
  second.id = 8;
  REQUIRE(writer.submit_wait(std::move(first), 0) == StoreWriter::SubmitResult::ok);
  REQUIRE(writer.submit_wait(std::move(second), 0) == StoreWriter::SubmitResult::ok);
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (writer.replica_retries().failures < 3 && std::chrono::steady_clock::now() < deadline) {
    notifier.wait_past(notifier.calls(), deadline);
  }
  const auto report = writer.replica_retries();
  CHECK(report.failures >= 3);
  CHECK(report.last_error.find("disk full (injected)") != std::string::npos);
  CHECK(writer.take_committed().empty());  // nothing given up while the fault lasts
  REQUIRE(exec("UPDATE fault SET on_ = 0;") == SQLITE_OK);
  sqlite3_close(control);
  const auto committed = collect(writer, notifier, 2);
  REQUIRE(committed.size() == 2);
  CHECK_FALSE(committed[0].error.has_value());
  CHECK(committed[0].result.id == 7);
  CHECK(committed[1].result.id == 8);
  CHECK(stored_events(path) == 2);
}

TEST_CASE("store_writer: retention") {
  TempDir dir;
  const auto path = dir.file("x.db");
  Notifier notifier;
  StoreWriterOptions options;
  SUBCASE("by count, after every batch") {
    options.retain_events = 5;
    options.retention_interval_us = 0;
    {
      StoreWriter writer(Store(path), options, notifier.callback());
      for (std::uint64_t tag = 0; tag < 20; ++tag) writer.submit(make_event("{}"), tag);
      collect(writer, notifier, 20);
    }  // the thread's last pass applies retention before it exits
    Store store(path, Store::Mode::read_only);
    CHECK(store.stats().events == 5);
    CHECK(store.query({}).front().id == 16);
  }
  SUBCASE("by age, when the thread starts") {
    {
      Store store(path);
      const std::vector old{NewEvent{"a", "{}", {}, now_unix_us() - 7'200'000'000}};
      store.append(old);
      store.append(old);
    }
    options.retain_age_us = 3'600'000'000;
    {
      StoreWriter writer(Store(path), options, notifier.callback());
      writer.submit(make_event("{}"), 0);
      CHECK(collect(writer, notifier, 1).front().result.id == 3);
    }
    Store store(path, Store::Mode::read_only);
    CHECK(store.stats().events == 1);
    CHECK(store.get(3).has_value());
  }
}
