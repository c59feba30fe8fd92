// SQLite event store. The contract is in store.hpp; this file holds the reasons.
#include "core/store/store.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <filesystem>
#include <thread>
#include <utility>

#include "core/store/filter_sql.hpp"
#include "core/util/error.hpp"

namespace evstream {
namespace {

using Clock = std::chrono::steady_clock;
// How long a statement waits for another connection's lock before it fails.
constexpr std::chrono::milliseconds kBusyTimeout{5000};

std::string file_name(sqlite3* db) {
  const char* file = db ? sqlite3_db_filename(db, "main") : nullptr;
  return file && *file ? file : ":memory:";
}

// Keeps SQLite's code so the open path can tell "not a database" from "cannot create the file".
struct SqliteError : Error {
  SqliteError(sqlite3* db, int rc)
      : Error("database " + file_name(db) + ": " + sqlite3_errmsg(db)),
        code(rc),
        reason(sqlite3_errmsg(db)) {}
  int code;
  std::string reason;  // sqlite3_errmsg(nullptr) is "out of memory"
};

void exec(sqlite3* db, const std::string& sql) {
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
    throw SqliteError(db, sqlite3_errcode(db));
  }
}

// One execution of a prepared statement: binds in order, steps, reads columns, and resets the
// statement when it goes out of scope so it can run again. Text binds are SQLITE_STATIC: the
// caller's strings outlive the Run.
class Run {
 public:
  explicit Run(const Statement& statement) : m_stmt(statement.get()) {}
  ~Run() {
    sqlite3_reset(m_stmt);
    sqlite3_clear_bindings(m_stmt);
  }
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;

  Run& bind(std::int64_t value) { return check(sqlite3_bind_int64(m_stmt, ++m_index, value)); }
  Run& bind(std::string_view text) {
    return check(sqlite3_bind_text64(m_stmt, ++m_index, text.data(), text.size(), SQLITE_STATIC,
                                     SQLITE_UTF8));
  }
  Run& bind(double value) { return check(sqlite3_bind_double(m_stmt, ++m_index, value)); }
  Run& bind(const std::optional<std::string>& text) {
    return text ? bind(std::string_view(*text)) : check(sqlite3_bind_null(m_stmt, ++m_index));
  }
  // True when a row is ready, false when done; throws on failure.
  bool step() {
    for (auto deadline = Clock::time_point::max();;) {
      const int rc = sqlite3_step(m_stmt);
      if (rc == SQLITE_ROW) return m_rows = true;
      if (rc == SQLITE_DONE) return false;
      // Connections sharing one cache (an in-memory database opened as a shared-cache URI) get
      // SQLITE_LOCKED for table locks, which busy_timeout does not cover: retry until the other
      // connection's statement or transaction ends, as busy_timeout would. Tables are locked
      // before the first row, so a restart never repeats rows.
      if ((rc & 0xff) != SQLITE_LOCKED || m_rows) throw SqliteError(sqlite3_db_handle(m_stmt), rc);
      if (deadline == Clock::time_point::max()) deadline = Clock::now() + kBusyTimeout;
      if (Clock::now() > deadline) throw SqliteError(sqlite3_db_handle(m_stmt), rc);
      sqlite3_reset(m_stmt);
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }
  bool is_null(int column) const { return sqlite3_column_type(m_stmt, column) == SQLITE_NULL; }
  std::int64_t int64(int column) const { return sqlite3_column_int64(m_stmt, column); }
  std::string text(int column) const {
    const auto* bytes = reinterpret_cast<const char*>(sqlite3_column_text(m_stmt, column));
    return std::string(bytes ? bytes : "",
                       static_cast<std::size_t>(sqlite3_column_bytes(m_stmt, column)));
  }
  Record record() const { return Record{int64(0), text(1), int64(2), text(3)}; }

 private:
  Run& check(int rc) {
    if (rc != SQLITE_OK) throw SqliteError(sqlite3_db_handle(m_stmt), rc);
    return *this;
  }
  sqlite3_stmt* m_stmt;
  int m_index = 0;
  bool m_rows = false;
};

std::int64_t scalar(sqlite3* db, const char* sql, std::int64_t fallback = 0) {
  Statement statement(db, sql);
  Run run(statement);
  return run.step() && !run.is_null(0) ? run.int64(0) : fallback;
}

// kMigrations[v] takes a database from schema v to v + 1. Never edit a shipped migration; add one.
void migrate_to_v1(sqlite3* db) {
  // AUTOINCREMENT: ids are never reused, even after retention deleted the newest rows, so a
  // client's resume cursor can never point at a different event.
  exec(db,
       "CREATE TABLE events(id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL,"
       " time_us INTEGER NOT NULL, data TEXT NOT NULL, key TEXT UNIQUE);"
       "CREATE INDEX events_topic_id ON events(topic, id);"
       "CREATE INDEX events_time_us ON events(time_us);");
}
void migrate_to_v2(sqlite3* db) {
  exec(db, "CREATE TABLE meta(name TEXT PRIMARY KEY, value TEXT NOT NULL);");
}
constexpr std::array<void (*)(sqlite3*), Store::kSchemaVersion> kMigrations = {&migrate_to_v1,
                                                                               &migrate_to_v2};

std::string open_hint(int code, Store::Mode mode) {
  switch (code & 0xff) {
    case SQLITE_CANTOPEN:
      return mode == Store::Mode::read_write
                 ? "check that the directory exists and is writable, or pass --db :memory:"
                 : "check that the file and its directory are readable";
    case SQLITE_NOTADB:
      return "it is not an SQLite database; pass the path of an evstream database or a new file";
    case SQLITE_CORRUPT:
      return "the file is damaged; restore it from a backup or move it aside";
    case SQLITE_READONLY:
    case SQLITE_PERM:
      return "check that the file and its directory are writable";
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return "another process holds it locked; stop that process or pass another --db";
    default:
      return "check the disk and the file's permissions";
  }
}

std::string topic_list(std::size_t count) {  // "(?, ?, ?)"
  std::string sql = "(?";
  for (std::size_t i = 1; i < count; ++i) sql += ", ?";
  return sql + ")";
}

}  // namespace

Durability parse_durability(std::string_view text) {
  if (text == "normal") return Durability::normal;
  if (text == "full") return Durability::full;
  throw Error("unknown durability '" + std::string(text) + "' (expected normal or full)");
}

Statement::Statement(sqlite3* db, const char* sql) {
  if (sqlite3_prepare_v2(db, sql, -1, &m_stmt, nullptr) != SQLITE_OK) {
    throw SqliteError(db, sqlite3_errcode(db));
  }
}
Statement::~Statement() {
  sqlite3_finalize(m_stmt);
}
Statement::Statement(Statement&& other) noexcept : m_stmt(std::exchange(other.m_stmt, nullptr)) {}
Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(m_stmt);
    m_stmt = std::exchange(other.m_stmt, nullptr);
  }
  return *this;
}

// Prepared once per connection; query() prepares its own because its SQL depends on the bounds.
struct Store::Statements {
  explicit Statements(sqlite3* db)
      : begin(db, "BEGIN IMMEDIATE"),
        commit(db, "COMMIT"),
        insert(db, "INSERT INTO events(topic, time_us, data, key) VALUES (?, ?, ?, ?)"),
        insert_replica(
            db, "INSERT OR IGNORE INTO events(id, topic, time_us, data) VALUES (?, ?, ?, ?)"),
        find_key(db, "SELECT id, time_us FROM events WHERE key = ?"),
        get(db, "SELECT id, topic, time_us, data FROM events WHERE id = ?"),
        last_id(db, "SELECT seq FROM sqlite_sequence WHERE name = 'events'"),
        count(db, "SELECT count(*) FROM events"),
        // Walks the time index backwards: O(log n) instead of scanning every older row.
        cursor_for_time(db,
                        "SELECT id FROM events WHERE time_us < ? ORDER BY time_us DESC, id DESC "
                        "LIMIT 1"),
        delete_older(db, "DELETE FROM events WHERE time_us < ?"),
        delete_beyond(db,
                      "DELETE FROM events WHERE id <= "
                      "(SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?)") {}
  Statement begin, commit, insert, insert_replica, find_key, get, last_id, count, cursor_for_time,
      delete_older, delete_beyond;
};

Store::Store(const std::string& path, Mode mode, Durability durability) : m_path(path) {
  try {
    open(mode, durability);
    migrate(mode);
    m_statements = std::make_unique<Statements>(m_db);
  } catch (const SqliteError& e) {
    close();
    throw Error("cannot open database " + m_path + ": " + e.reason + " (" +
                open_hint(e.code, mode) + ")");
  } catch (...) {
    close();
    throw;
  }
}

Store::~Store() {
  close();
}

Store::Store(Store&& other) noexcept
    : m_path(std::move(other.m_path)),
      m_db(std::exchange(other.m_db, nullptr)),
      m_statements(std::move(other.m_statements)),
      m_wal_listener(std::move(other.m_wal_listener)) {}

Store& Store::operator=(Store&& other) noexcept {
  if (this != &other) {
    close();
    m_path = std::move(other.m_path);
    m_db = std::exchange(other.m_db, nullptr);
    m_statements = std::move(other.m_statements);
    m_wal_listener = std::move(other.m_wal_listener);
  }
  return *this;
}

void Store::close() noexcept {
  m_statements.reset();  // statements must be finalized before their connection closes
  sqlite3_close_v2(m_db);
  m_db = nullptr;
}

void Store::open(Mode mode, Durability durability) {
  const bool read_only = mode == Mode::read_only;
  if (read_only && (m_path.empty() || m_path == ":memory:")) {
    throw Error(
        "cannot open database :memory: read-only: an in-memory database exists only "
        "inside its writing connection");
  }
  std::error_code ec;
  if (read_only && m_path.rfind("file:", 0) != 0 && !std::filesystem::exists(m_path, ec)) {
    throw Error("cannot open database " + m_path + ": no such file");
  }
  const int flags = read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  // URI names are accepted so two connections can share one in-memory database.
  const int rc = sqlite3_open_v2(m_path.c_str(), &m_db,
                                 flags | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) throw SqliteError(m_db, rc);
  // Wait for another writer instead of failing at once.
  sqlite3_busy_timeout(m_db, static_cast<int>(kBusyTimeout.count()));
  // journal_mode=WAL persists in the file and lets readers run beside the writer; it is also
  // the first statement that reads the file, so a text file fails here with SQLITE_NOTADB.
  exec(m_db, read_only ? "SELECT count(*) FROM sqlite_master" : "PRAGMA journal_mode=WAL");
  // synchronous is per connection (the default is FULL), so it is set on every open.
  exec(m_db,
       durability == Durability::full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
}

void Store::migrate(Mode mode) {
  auto check_not_newer = [this](std::int64_t version) {
    if (version > kSchemaVersion) {
      throw Error("database " + m_path + " was written by a newer evstream (schema " +
                  std::to_string(version) + "); upgrade evstream");
    }
  };
  std::int64_t version = scalar(m_db, "PRAGMA user_version");
  check_not_newer(version);
  if (version == kSchemaVersion) return;
  if (mode == Mode::read_only) {
    throw Error("cannot open database " + m_path + ": it has schema " + std::to_string(version) +
                ", not " + std::to_string(kSchemaVersion) +
                " (open it read-write once, e.g. with evstream serve, to create or upgrade it)");
  }
  exec(m_db, "BEGIN IMMEDIATE");
  try {
    version = scalar(m_db, "PRAGMA user_version");  // another process may have migrated meanwhile
    check_not_newer(version);
    if (version == 0 && scalar(m_db, "SELECT count(*) FROM sqlite_master") > 0) {
      throw Error("cannot open database " + m_path +
                  ": it holds tables but no evstream schema (pass the path of an evstream "
                  "database or a new file)");
    }
    for (; version < kSchemaVersion; ++version)
      kMigrations[static_cast<std::size_t>(version)](m_db);
    exec(m_db, "PRAGMA user_version = " + std::to_string(kSchemaVersion));
    exec(m_db, "COMMIT");
  } catch (...) {
    rollback();
    throw;
  }
}

void Store::rollback() noexcept {
  if (!sqlite3_get_autocommit(m_db)) sqlite3_exec(m_db, "ROLLBACK", nullptr, nullptr, nullptr);
}

std::vector<AppendResult> Store::append(std::span<const NewEvent> batch) {
  std::vector<AppendResult> results;
  if (batch.empty()) return results;
  results.reserve(batch.size());
  try {
    Run(m_statements->begin).step();
    for (const auto& event : batch) results.push_back(append_one(event));
    Run(m_statements->commit).step();
  } catch (const std::exception& e) {
    rollback();
    throw Error(std::string(e.what()) + " (a batch of " + std::to_string(batch.size()) +
                " events was rolled back; nothing of it was stored)");
  }
  return results;
}

AppendResult Store::append_one(const NewEvent& event) {
  if (event.id != 0) {
    Run insert(m_statements->insert_replica);
    insert.bind(event.id).bind(std::string_view(event.topic)).bind(event.time_us);
    insert.bind(std::string_view(event.data)).step();
    return {event.id, event.time_us, sqlite3_changes(m_db) == 0};
  }
  // The key lookup runs inside the batch's transaction, so it also sees keys inserted earlier in
  // the same batch.
  if (event.key) {
    Run find(m_statements->find_key);
    if (find.bind(std::string_view(*event.key)).step()) return {find.int64(0), find.int64(1), true};
  }
  Run insert(m_statements->insert);
  insert.bind(std::string_view(event.topic)).bind(event.time_us).bind(std::string_view(event.data));
  insert.bind(event.key).step();
  return {sqlite3_last_insert_rowid(m_db), event.time_us, false};
}

std::vector<Record> Store::query(const Query& query) {
  std::string sql = "SELECT id, topic, time_us, data FROM events WHERE 1";
  if (query.after) sql += " AND id > ?";
  if (query.before) sql += " AND id < ?";
  if (query.since_us) sql += " AND time_us >= ?";
  if (query.until_us) sql += " AND time_us <= ?";
  if (!query.topics.empty()) sql += " AND topic IN " + topic_list(query.topics.size());
  sql += query.order == Order::asc ? " ORDER BY id ASC LIMIT ?" : " ORDER BY id DESC LIMIT ?";

  Statement statement(m_db, sql.c_str());
  Run run(statement);
  for (const auto& bound : {query.after, query.before, query.since_us, query.until_us}) {
    if (bound) run.bind(*bound);
  }
  for (const auto& topic : query.topics) run.bind(std::string_view(topic));
  run.bind(std::int64_t{std::clamp(query.limit, 1, kMaxQueryLimit)});

  std::vector<Record> records;
  while (run.step()) records.push_back(run.record());
  return records;
}

namespace {

// The ids a query can reach, exclusive at both ends: its after/before, the ids stored, and the
// ids of the first and last event inside its time range (the time index answers those).
struct IdRange {
  EventId low = 0;
  EventId high = 0;
  bool empty() const { return low + 1 >= high; }
};

}  // namespace

Store::FilteredPage Store::query_filtered(const Query& query, const ScanBudget& budget) {
  const EventId first_stored = scalar(m_db, "SELECT min(id) FROM events", 0);
  if (first_stored == 0) return {};
  const EventId past_last = last_id() + 1;
  IdRange range{std::max(query.after.value_or(0), first_stored - 1),
                std::min(query.before.value_or(past_last), past_last)};
  if (query.since_us) {
    Statement first(m_db, "SELECT min(id) FROM events WHERE time_us >= ?");
    Run run(first);
    range.low = run.bind(*query.since_us).step() && !run.is_null(0)
                    ? std::max(range.low, run.int64(0) - 1)
                    : range.high;
  }
  if (query.until_us) {
    Statement last(m_db, "SELECT max(id) FROM events WHERE time_us <= ?");
    Run run(last);
    range.high = run.bind(*query.until_us).step() && !run.is_null(0)
                     ? std::min(range.high, run.int64(0) + 1)
                     : range.low;
  }

  const SqlCondition condition = filter_sql(query.filter);
  std::string sql = "SELECT id, topic, time_us, data FROM events WHERE id >= ? AND id < ?";
  if (query.since_us) sql += " AND time_us >= ?";
  if (query.until_us) sql += " AND time_us <= ?";
  if (!query.topics.empty()) sql += " AND topic IN " + topic_list(query.topics.size());
  sql += " AND (" + condition.sql + ")";
  sql += query.order == Order::asc ? " ORDER BY id ASC" : " ORDER BY id DESC";
  Statement statement(m_db, sql.c_str());

  const auto limit = static_cast<std::size_t>(std::clamp(query.limit, 1, kMaxQueryLimit));
  const auto window = std::max<std::int64_t>(budget.window_ids, 1);
  const auto deadline = Clock::now() + budget.time;
  FilteredPage page;
  while (!range.empty()) {
    const bool asc = query.order == Order::asc;
    const EventId from = asc ? range.low + 1 : std::max(range.low + 1, range.high - window);
    const EventId to = asc ? std::min(range.high, range.low + 1 + window) : range.high;
    Run run(statement);
    run.bind(from).bind(to);
    for (const auto& bound : {query.since_us, query.until_us}) {
      if (bound) run.bind(*bound);
    }
    for (const auto& topic : query.topics) run.bind(std::string_view(topic));
    for (const auto& value : condition.values) {
      if (const auto* text = std::get_if<std::string>(&value)) {
        run.bind(std::string_view(*text));
      } else {
        run.bind(std::get<double>(value));
      }
    }
    while (run.step()) {
      Record record = run.record();
      if (!matches(query.filter, EventFields(record.data))) continue;
      if (page.records.size() == limit) {  // one more match: the page is full and more follow
        page.continue_from = page.records.back().id;
        return page;
      }
      page.records.push_back(std::move(record));
    }
    if (asc) {
      range.low = to - 1;
    } else {
      range.high = from;
    }
    if (!range.empty() && Clock::now() >= deadline) {
      page.continue_from = asc ? range.low : range.high;
      return page;
    }
  }
  return page;
}

std::optional<std::string> Store::setting(std::string_view name) {
  Statement statement(m_db, "SELECT value FROM meta WHERE name = ?");
  Run run(statement);
  if (!run.bind(name).step()) return std::nullopt;
  return run.text(0);
}

void Store::set_setting(std::string_view name, std::string_view value) {
  Statement statement(m_db, "INSERT OR REPLACE INTO meta(name, value) VALUES (?, ?)");
  Run(statement).bind(name).bind(value).step();
}

std::optional<Record> Store::get(EventId id) {
  Run run(m_statements->get);
  if (!run.bind(id).step()) return std::nullopt;
  return run.record();
}

EventId Store::last_id() {
  // sqlite_sequence keeps the newest id ever assigned, even when that row has been deleted.
  Run run(m_statements->last_id);
  return run.step() ? run.int64(0) : 0;
}

StoreStats Store::stats() {
  StoreStats stats;
  {
    Run run(m_statements->count);  // count(*) walks the smallest index: fine for health checks
    stats.events = run.step() ? run.int64(0) : 0;
  }
  stats.last_id = last_id();
  stats.file_bytes = file_bytes();
  return stats;
}

std::int64_t Store::file_bytes() {
  std::int64_t bytes = 0;
  const char* file = sqlite3_db_filename(m_db, "main");
  if (file && *file) {
    for (const std::string& name : {std::string(file), std::string(file) + "-wal"}) {
      std::error_code ec;
      const auto size = std::filesystem::file_size(name, ec);
      if (!ec) bytes += static_cast<std::int64_t>(size);
    }
  }
  return bytes;
}

std::vector<EventId> Store::ids_before(EventId before, const std::vector<std::string>& topics,
                                       int limit) {
  // With an IN list SQLite reads at most `limit` index entries per topic and sorts those.
  std::string sql = "SELECT id FROM events WHERE id < ?";
  if (!topics.empty()) sql += " AND topic IN " + topic_list(topics.size());
  sql += " ORDER BY id DESC LIMIT ?";
  Statement statement(m_db, sql.c_str());
  Run run(statement);
  run.bind(before);
  for (const auto& topic : topics) run.bind(std::string_view(topic));
  run.bind(std::int64_t{std::clamp(limit, 1, kMaxQueryLimit)});
  std::vector<EventId> ids;
  while (run.step()) ids.push_back(run.int64(0));
  return ids;
}

EventId Store::cursor_for_time(std::int64_t time_us) {
  Run run(m_statements->cursor_for_time);
  return run.bind(time_us).step() ? run.int64(0) : 0;
}

std::int64_t Store::apply_retention(std::optional<std::int64_t> max_age_us,
                                    std::optional<std::int64_t> max_events) {
  if (!max_age_us && !max_events) return 0;
  std::int64_t removed = 0;
  try {
    Run(m_statements->begin).step();
    if (max_age_us) {
      Run(m_statements->delete_older).bind(now_unix_us() - *max_age_us).step();
      removed += sqlite3_changes64(m_db);
    }
    if (max_events) {
      // OFFSET 0 selects the newest row, so max_events <= 0 deletes everything.
      Run(m_statements->delete_beyond).bind(std::max<std::int64_t>(*max_events, 0)).step();
      removed += sqlite3_changes64(m_db);
    }
    Run(m_statements->commit).step();
  } catch (const std::exception& e) {
    rollback();
    throw Error(std::string(e.what()) + " (retention was rolled back)");
  }
  return removed;
}

}  // namespace evstream
