#include "core/store/store.hpp"

#include <doctest/doctest.h>

#include <sqlite3.h>
#include "tests/core/temp_dir.hpp"

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "core/util/error.hpp"

namespace {

using namespace evstream;

using evstream::testing::TempDir;

// A second, plain connection for what the Store API does not expose (pragmas, triggers).
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    REQUIRE(sqlite3_open(path.c_str(), &m_db) == SQLITE_OK);
  }
  ~RawDb() { sqlite3_close(m_db); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;
  void exec(const std::string& sql) {
    INFO(sql);
    REQUIRE(sqlite3_exec(m_db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  }
  std::string text(const std::string& sql) {
    Statement statement(m_db, sql.c_str());
    REQUIRE(sqlite3_step(statement.get()) == SQLITE_ROW);
    const auto* value = reinterpret_cast<const char*>(sqlite3_column_text(statement.get(), 0));
    return value ? value : "";
  }

 private:
  sqlite3* m_db = nullptr;
};

NewEvent make_event(std::string topic, std::string data, std::optional<std::string> key = {},
                    std::int64_t time_us = 1'000) {
  return NewEvent{std::move(topic), std::move(data), std::move(key), time_us};
}

// Appends `n` events, one per batch: topic "a", "b", "c" by turn and time_us = 1000 * id when the
// store starts empty.
void fill(Store& store, int n) {
  for (int i = 1; i <= n; ++i) {
    const std::string topic(1, static_cast<char>('a' + i % 3));
    const std::vector batch{make_event(topic, "{\"i\":" + std::to_string(i) + "}", {}, 1'000 * i)};
    store.append(batch);
  }
}

std::vector<EventId> ids_of(const std::vector<Record>& records) {
  std::vector<EventId> ids;
  for (const auto& record : records) ids.push_back(record.id);
  return ids;
}

std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

TEST_CASE("store: a new database gets the current schema in WAL mode") {
  TempDir dir;
  const auto path = dir.file("x.db");
  { Store store(path); }
  RawDb raw(path);
  CHECK(raw.text("PRAGMA user_version") == std::to_string(Store::kSchemaVersion));
  CHECK(raw.text("SELECT count(*) FROM sqlite_master WHERE name = 'meta'") == "1");
  CHECK(raw.text("PRAGMA journal_mode") == "wal");
  const auto sql = raw.text("SELECT sql FROM sqlite_master WHERE name = 'events'");
  CHECK(sql.find("AUTOINCREMENT") != std::string::npos);
  CHECK(sql.find("key TEXT UNIQUE") != std::string::npos);
  CHECK(raw.text("SELECT count(*) FROM sqlite_master WHERE name IN "
                 "('events_topic_id', 'events_time_us')") == "2");
}

TEST_CASE("store: a schema 1 database is upgraded in place, events kept") {
  TempDir dir;
  const auto path = dir.file("x.db");
  {
    Store store(path);
    fill(store, 3);
  }
  {
    RawDb raw(path);  // back to what evstream 0.1's first schema looked like
    raw.exec("DROP TABLE meta; PRAGMA user_version = 1");
  }
  CHECK(error_of([&] {
          Store store(path, Store::Mode::read_only);
        }).find("it has schema 1, not 2 (open it read-write once") != std::string::npos);
  Store store(path);
  CHECK(ids_of(store.query({})) == std::vector<EventId>{1, 2, 3});
  CHECK_FALSE(store.setting("log"));
  store.set_setting("log", "nats:EVSTREAM");
  store.set_setting("log", "nats:OTHER");
  CHECK(store.setting("log") == "nats:OTHER");
}

TEST_CASE("store: replica events keep the ids their log gave them") {
  TempDir dir;
  Store store(dir.file("x.db"));
  auto replica = [](EventId id, std::string data, std::optional<std::string> key = {}) {
    NewEvent event = make_event("cam", std::move(data), std::move(key), 5'000 + id);
    event.id = id;
    return event;
  };
  // Gaps are kept (the log deleted or skipped those), keys are not deduplicated here (the log
  // did that), and an id already stored (a redelivery after a restart) stores nothing.
  const std::vector batch{replica(3, R"({"n":3})", "k"), replica(7, R"({"n":7})", "k"),
                          replica(3, R"({"again":3})")};
  const auto results = store.append(batch);
  REQUIRE(results.size() == 3);
  CHECK((results[0].id == 3 && !results[0].duplicate && results[0].time_us == 5'003));
  CHECK((results[1].id == 7 && !results[1].duplicate));
  CHECK((results[2].id == 3 && results[2].duplicate));
  CHECK(ids_of(store.query({})) == std::vector<EventId>{3, 7});
  CHECK(store.get(3)->data == R"({"n":3})");
  CHECK(store.last_id() == 7);
}

TEST_CASE("store: reopening keeps events and ids keep increasing") {
  TempDir dir;
  const auto path = dir.file("x.db");
  {
    Store store(path);
    fill(store, 3);
  }
  Store store(path);
  CHECK(ids_of(store.query({})) == std::vector<EventId>{1, 2, 3});
  CHECK(store.last_id() == 3);
  const std::vector batch{make_event("a", "{}"), make_event("a", "{}")};
  const auto results = store.append(batch);
  CHECK(results[0].id == 4);
  CHECK(results[1].id == 5);
}

TEST_CASE("store: ids are never reused after retention removed the newest") {
  TempDir dir;
  const auto path = dir.file("x.db");
  {
    Store store(path);
    fill(store, 3);
    CHECK(store.apply_retention(std::nullopt, 0) == 3);
    CHECK(store.stats().events == 0);
    CHECK(store.last_id() == 3);
  }
  Store store(path);
  CHECK(store.last_id() == 3);
  const std::vector batch{make_event("a", "{}")};
  CHECK(store.append(batch)[0].id == 4);
}

TEST_CASE("store: idempotency keys") {
  Store store(":memory:");
  SUBCASE("a key seen in an earlier batch") {
    const std::vector first{make_event("a", "{\"n\":1}", "k1", 100)};
    const std::vector second{make_event("b", "{\"n\":2}", "k1", 200)};
    const auto stored = store.append(first)[0];
    const auto again = store.append(second)[0];
    CHECK_FALSE(stored.duplicate);
    CHECK(again.duplicate);
    CHECK(again.id == stored.id);
    CHECK(again.time_us == 100);
    CHECK(store.stats().events == 1);
    CHECK(store.get(stored.id)->data == "{\"n\":1}");
  }
  SUBCASE("a key seen earlier in the same batch") {
    const std::vector batch{make_event("a", "{\"n\":1}", "k1", 100),
                            make_event("a", "{\"n\":2}", "k1", 200), make_event("a", "{\"n\":3}")};
    const auto results = store.append(batch);
    REQUIRE(results.size() == 3);
    CHECK(results[0].id == 1);
    CHECK_FALSE(results[0].duplicate);
    CHECK(results[1].id == 1);
    CHECK(results[1].time_us == 100);
    CHECK(results[1].duplicate);
    CHECK(results[2].id == 2);
    CHECK_FALSE(results[2].duplicate);
    CHECK(store.stats().events == 2);
  }
  SUBCASE("events without a key are never duplicates") {
    const std::vector batch{make_event("a", "{}"), make_event("a", "{}")};
    const auto results = store.append(batch);
    CHECK(results[0].id == 1);
    CHECK(results[1].id == 2);
    CHECK_FALSE(results[1].duplicate);
  }
  SUBCASE("an empty batch does nothing") {
    CHECK(store.append({}).empty());
    CHECK(store.last_id() == 0);
  }
}

TEST_CASE("store: a failing transaction stores nothing") {
  TempDir dir;
  const auto path = dir.file("x.db");
  Store store(path);
  fill(store, 1);
  RawDb raw(path);
  raw.exec(
      "CREATE TRIGGER fail BEFORE INSERT ON events WHEN NEW.topic = 'boom' "
      "BEGIN SELECT RAISE(ABORT, 'injected failure'); END");
  const std::vector batch{make_event("a", "{}"), make_event("a", "{}", "k2"),
                          make_event("boom", "{}")};
  const auto message = error_of([&] { store.append(batch); });
  CHECK(message.find("injected failure") != std::string::npos);
  CHECK(message.find("nothing of it was stored") != std::string::npos);
  CHECK(store.stats().events == 1);
  CHECK(store.last_id() == 1);
  // The store stays usable, the rolled-back key is unknown and its id is handed out again.
  const std::vector retry{make_event("a", "{}", "k2")};
  const auto result = store.append(retry)[0];
  CHECK_FALSE(result.duplicate);
  CHECK(result.id == 2);
}

TEST_CASE("store: query pages") {
  Store store(":memory:");
  fill(store, 10);  // ids 1..10, time 1000 * id, topic a/b/c by id % 3
  Query query;
  SUBCASE("everything, ascending by default") {
    CHECK(ids_of(store.query(query)) == std::vector<EventId>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  }
  SUBCASE("after and before are exclusive") {
    query.after = 3;
    query.before = 7;
    CHECK(ids_of(store.query(query)) == std::vector<EventId>{4, 5, 6});
  }
  SUBCASE("since and until are inclusive") {
    query.since_us = 3'000;
    query.until_us = 6'000;
    CHECK(ids_of(store.query(query)) == std::vector<EventId>{3, 4, 5, 6});
  }
  SUBCASE("several topics") {
    query.topics = {"a", "c"};  // a: id % 3 == 0, c: id % 3 == 2
    CHECK(ids_of(store.query(query)) == std::vector<EventId>{2, 3, 5, 6, 8, 9});
  }
  SUBCASE("bounds combine") {
    query.topics = {"b"};
    query.after = 1;
    query.until_us = 9'000;
    CHECK(ids_of(store.query(query)) == std::vector<EventId>{4, 7});
  }
  SUBCASE("descending pages walk back from before") {
    query.order = Order::desc;
    query.limit = 3;
    CHECK(ids_of(store.query(query)) == std::vector<EventId>{10, 9, 8});
    query.before = 8;
    CHECK(ids_of(store.query(query)) == std::vector<EventId>{7, 6, 5});
  }
  SUBCASE("records carry every field") {
    query.after = 4;
    query.limit = 1;
    const auto records = store.query(query);
    REQUIRE(records.size() == 1);
    CHECK(records[0].id == 5);
    CHECK(records[0].topic == "c");
    CHECK(records[0].time_us == 5'000);
    CHECK(records[0].data == "{\"i\":5}");
  }
  SUBCASE("empty results") {
    query.after = 10;
    CHECK(store.query(query).empty());
    query = Query{};
    query.topics = {"zzz"};
    CHECK(store.query(query).empty());
    query = Query{};
    query.since_us = 5'000;
    query.until_us = 4'000;
    CHECK(store.query(query).empty());
  }
  SUBCASE("limit is clamped to 1..1000") {
    query.limit = 0;
    CHECK(store.query(query).size() == 1);
    query.limit = -5;
    CHECK(store.query(query).size() == 1);
    fill(store, 1'100);
    query.limit = 5'000;
    CHECK(store.query(query).size() == static_cast<std::size_t>(kMaxQueryLimit));
  }
}

TEST_CASE("store: get") {
  Store store(":memory:");
  fill(store, 2);
  const auto record = store.get(2);
  REQUIRE(record.has_value());
  CHECK(record->id == 2);
  CHECK(record->topic == "c");
  CHECK(record->data == "{\"i\":2}");
  CHECK_FALSE(store.get(0).has_value());
  CHECK_FALSE(store.get(3).has_value());
  CHECK_FALSE(store.get(-1).has_value());
}

TEST_CASE("store: ids_before") {
  Store store(":memory:");
  CHECK(store.ids_before(100, {}, 5).empty());
  fill(store, 10);
  using Ids = std::vector<EventId>;
  CHECK(store.ids_before(11, {}, 3) == Ids{10, 9, 8});
  CHECK(store.ids_before(3, {}, 5) == Ids{2, 1});
  CHECK(store.ids_before(1, {}, 5).empty());
  // Topic b holds ids 1, 4, 7, 10.
  CHECK(store.ids_before(11, {"b"}, 2) == Ids{10, 7});
  CHECK(store.ids_before(7, {"b"}, 5) == Ids{4, 1});
  CHECK(store.ids_before(11, {"a", "b"}, 4) == Ids{10, 9, 7, 6});  // a: 3, 6, 9; b: 1, 4, 7, 10
  CHECK(store.ids_before(11, {"nope"}, 4).empty());
}

TEST_CASE("store: cursor_for_time") {
  Store store(":memory:");
  CHECK(store.cursor_for_time(5'000) == 0);
  fill(store, 10);  // time 1000 * id
  CHECK(store.cursor_for_time(5'000) == 4);
  CHECK(store.cursor_for_time(5'500) == 5);
  CHECK(store.cursor_for_time(1'000) == 0);
  CHECK(store.cursor_for_time(1'000'000) == 10);
}

TEST_CASE("store: retention") {
  Store store(":memory:");
  SUBCASE("by age") {
    const auto now = now_unix_us();
    const std::int64_t hour = 3'600'000'000;
    const std::vector batch{
        make_event("a", "{}", "old", now - 2 * hour), make_event("a", "{}", {}, now - 2 * hour),
        make_event("a", "{}", {}, now - 10'000'000), make_event("a", "{}", {}, now)};
    store.append(batch);
    CHECK(store.apply_retention(hour, std::nullopt) == 2);
    CHECK(ids_of(store.query({})) == std::vector<EventId>{3, 4});
    // A key is forgotten with its event.
    const std::vector again{make_event("a", "{}", "old", now)};
    CHECK_FALSE(store.append(again)[0].duplicate);
  }
  SUBCASE("by count") {
    fill(store, 10);
    CHECK(store.apply_retention(std::nullopt, 4) == 6);
    CHECK(ids_of(store.query({})) == std::vector<EventId>{7, 8, 9, 10});
    CHECK(store.apply_retention(std::nullopt, 4) == 0);
    CHECK(store.apply_retention(std::nullopt, 100) == 0);
  }
  SUBCASE("both, and neither") {
    fill(store, 10);  // times 1970-01-01: all older than a day
    CHECK(store.apply_retention(std::nullopt, std::nullopt) == 0);
    CHECK(store.apply_retention(86'400'000'000, 5) == 10);
    CHECK(store.stats().events == 0);
    CHECK(store.stats().last_id == 10);
  }
}

TEST_CASE("store: stats") {
  SUBCASE("file") {
    TempDir dir;
    const auto path = dir.file("x.db");
    Store store(path);
    fill(store, 5);
    const auto stats = store.stats();
    CHECK(stats.events == 5);
    CHECK(stats.last_id == 5);
    std::error_code ec;
    const auto wal = std::filesystem::file_size(path + "-wal", ec);
    CHECK(stats.file_bytes ==
          static_cast<std::int64_t>(std::filesystem::file_size(path) + (ec ? 0 : wal)));
    CHECK(stats.file_bytes > 0);
  }
  SUBCASE(":memory:") {
    Store store(":memory:");
    fill(store, 2);
    const auto stats = store.stats();
    CHECK(stats.events == 2);
    CHECK(stats.last_id == 2);
    CHECK(stats.file_bytes == 0);
  }
}

TEST_CASE("store: data is stored byte for byte") {
  const std::vector<std::string> datas = {
      R"({"n":123456789012345678901234567890})",
      R"({"price":1.10,"tiny":1e-400,"neg":-0.0,"exp":1E+2})",
      "{\"text\":\"caf\xc3\xa9 \xf0\x9f\x98\x80 \xe4\xb8\xad\"}",
      R"({"esc":"\u00e9\"\\\n\t\ud83d\ude00","nested":{"a":[1,[2,{"b":null}]]}})",
      "{\"big\":\"" + std::string(1 << 20, 'x') + "\"}",
      "{}"};
  TempDir dir;
  const auto path = dir.file("x.db");
  std::vector<NewEvent> batch;
  for (const auto& data : datas) batch.push_back(make_event("a", data));
  { Store(path).append(batch); }
  Store store(path, Store::Mode::read_only);
  for (std::size_t i = 0; i < datas.size(); ++i) {
    const auto record = store.get(static_cast<EventId>(i) + 1);
    REQUIRE(record.has_value());
    CHECK(record->data == datas[i]);
  }
}

TEST_CASE("store: a read-only store sees what a writer commits") {
  TempDir dir;
  const auto path = dir.file("x.db");
  Store writer(path);
  fill(writer, 2);
  Store reader(path, Store::Mode::read_only);
  CHECK(reader.query({}).size() == 2);
  fill(writer, 3);
  CHECK(reader.query({}).size() == 5);
  CHECK(reader.last_id() == 5);
  CHECK(reader.stats().events == 5);
  // A writer in the middle of a transaction blocks neither reads nor shows them early.
  RawDb raw(path);
  raw.exec("BEGIN IMMEDIATE");
  raw.exec("INSERT INTO events(topic, time_us, data) VALUES ('a', 1, '{}')");
  CHECK(reader.query({}).size() == 5);
  raw.exec("COMMIT");
  CHECK(reader.query({}).size() == 6);
  const std::vector batch{make_event("a", "{}")};
  CHECK(error_of([&] { reader.append(batch); }).find("readonly") != std::string::npos);
}

TEST_CASE("store: a shared-cache in-memory database serves a writer and a reader at once") {
  // How serve runs with --db :memory:. Shared-cache table locks answer SQLITE_LOCKED, which
  // busy_timeout does not cover; the store waits them out instead of failing.
  const std::string uri = "file:evstream-test-shared?mode=memory&cache=shared";
  Store writer(uri);
  Store reader(uri, Store::Mode::read_only);
  CHECK(reader.stats().file_bytes == 0);
  std::atomic<bool> done = false;
  std::string writer_error;
  std::thread thread([&] {
    const std::vector batch(256, make_event("a", std::string(100, 'x')));
    try {
      for (int i = 0; i < 40; ++i) writer.append(batch);
    } catch (const Error& e) {
      writer_error = e.what();
    }
    done = true;
  });
  std::string reader_error;
  Query query;
  query.order = Order::desc;
  query.limit = 10;
  for (int reads = 0; !done || reads == 0; ++reads) {
    try {
      reader.query(query);
      reader.stats();
    } catch (const Error& e) {
      reader_error = e.what();
    }
  }
  thread.join();
  CHECK(writer_error == "");
  CHECK(reader_error == "");
  CHECK(reader.last_id() == 40 * 256);
}

TEST_CASE("store: read-only mode neither creates nor migrates") {
  TempDir dir;
  const auto path = dir.file("x.db");
  { RawDb raw(path); }  // an empty SQLite database: schema 0
  const auto message = error_of([&] { Store store(path, Store::Mode::read_only); });
  CHECK(message.find("cannot open database " + path + ": it has schema 0, not " +
                     std::to_string(Store::kSchemaVersion)) == 0);
  RawDb raw(path);
  CHECK(raw.text("PRAGMA user_version") == "0");
  CHECK(raw.text("SELECT count(*) FROM sqlite_master") == "0");
}

TEST_CASE("store: open errors name the path, the reason and what to do") {
  TempDir dir;
  SUBCASE("missing directory") {
    const auto path = dir.file("no/such/dir/x.db");
    CHECK(error_of([&] { Store store(path); }) ==
          "cannot open database " + path +
              ": unable to open database file (check that the directory exists and is writable, "
              "or pass --db :memory:)");
  }
  SUBCASE("a text file") {
    const auto path = dir.file("notes.txt");
    const std::string text = "these are notes, not a database\n";
    std::ofstream(path) << text;
    for (auto mode : {Store::Mode::read_write, Store::Mode::read_only}) {
      const auto message = error_of([&] { Store store(path, mode); });
      CHECK(message.find("cannot open database " + path + ": file is not a database (") == 0);
      CHECK(message.find('\n') == std::string::npos);
    }
    CHECK(read_file(path) == text);
  }
  SUBCASE("a newer schema") {
    const auto path = dir.file("x.db");
    { Store store(path); }
    RawDb(path).exec("PRAGMA user_version = 99");
    const auto expected =
        "database " + path + " was written by a newer evstream (schema 99); upgrade evstream";
    CHECK(error_of([&] { Store store(path); }) == expected);
    CHECK(error_of([&] { Store store(path, Store::Mode::read_only); }) == expected);
  }
  SUBCASE("read-only and missing") {
    const auto path = dir.file("missing.db");
    CHECK(error_of([&] { Store store(path, Store::Mode::read_only); }) ==
          "cannot open database " + path + ": no such file");
    CHECK_FALSE(std::filesystem::exists(path));
  }
  SUBCASE("another application's database") {
    const auto path = dir.file("other.db");
    RawDb(path).exec("CREATE TABLE events(x)");
    CHECK(error_of([&] { Store store(path); }).find("no evstream schema") != std::string::npos);
  }
  SUBCASE("read-only :memory:") {
    CHECK(error_of([&] {
            Store store(":memory:", Store::Mode::read_only);
          }).find("cannot open database :memory: read-only") == 0);
  }
}

TEST_CASE("store: durability") {
  CHECK(parse_durability("normal") == Durability::normal);
  CHECK(parse_durability("full") == Durability::full);
  CHECK(error_of([] { parse_durability("fast"); }) ==
        "unknown durability 'fast' (expected normal or full)");
  TempDir dir;
  const auto path = dir.file("x.db");
  {
    Store store(path, Store::Mode::read_write, Durability::full);
    fill(store, 2);
  }
  CHECK(Store(path, Store::Mode::read_write, Durability::normal).last_id() == 2);
}

TEST_CASE("store: moving a Store moves its connection") {
  Store first(":memory:");
  fill(first, 1);
  Store second(std::move(first));
  CHECK(second.last_id() == 1);
  Store third(":memory:");
  third = std::move(second);
  CHECK(third.last_id() == 1);
  CHECK(third.path() == ":memory:");
}
