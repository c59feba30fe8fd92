#pragma once
// SQLite event store: schema + migrations, batched appends with idempotency keys, paged reads and
// retention. A Store is one connection and must stay on one thread; the server keeps a writing
// Store on the store thread (see StoreWriter) and a read-only Store on the service thread.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/wire/event.hpp"
#include "core/wire/events_query.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace evstream {

// synchronous=NORMAL survives a crash of the process (kill -9); FULL also survives power loss.
enum class Durability { normal, full };
Durability parse_durability(std::string_view text);  // "normal" | "full"; throws evstream::Error

// An event on its way into the store.
struct NewEvent {
  std::string topic;
  std::string data;                // compact JSON object text
  std::optional<std::string> key;  // idempotency key
  std::int64_t time_us = 0;        // acceptance time
  // Set on a replica's copy of an event another log numbered (a JetStream sequence): stored under
  // this id and never deduplicated by key (the log did that); an id already stored is a duplicate.
  EventId id = 0;
};

// Per event of an append: its id and whether the key was already known (then nothing was stored
// and `id`/`time_us` are the first event's).
struct AppendResult {
  EventId id = 0;
  std::int64_t time_us = 0;
  bool duplicate = false;
};

struct StoreStats {
  std::int64_t events = 0;      // rows stored now
  EventId last_id = 0;          // newest id ever assigned (0 when none), survives retention
  std::int64_t file_bytes = 0;  // main db file + WAL, 0 for :memory:
};

// Owns one sqlite3_stmt.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql);
  ~Statement();
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  sqlite3_stmt* get() const { return m_stmt; }

 private:
  sqlite3_stmt* m_stmt = nullptr;
};

class Store {
 public:
  enum class Mode { read_write, read_only };
  // Opens (creating and migrating when read_write) the database at `path` (":memory:" allowed for
  // read_write). Throws evstream::Error with the path and the reason (unwritable, corrupt, not a
  // database, newer schema) when it cannot.
  Store(const std::string& path, Mode mode = Mode::read_write,
        Durability durability = Durability::normal);
  ~Store();
  Store(Store&&) noexcept;
  Store& operator=(Store&&) noexcept;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Appends a batch in one transaction; results[i] belongs to batch[i]. A key already stored (or
  // earlier in the same batch) yields duplicate=true and stores nothing; a key is remembered as
  // long as its event is stored (retention forgets it). Throws evstream::Error when the
  // transaction fails (it is rolled back: nothing of the batch is stored).
  std::vector<AppendResult> append(std::span<const NewEvent> batch);

  // One page in `query`'s order. Its where= filter is not applied here: see query_filtered.
  std::vector<Record> query(const Query& query);
  // One page of a query with where= filters: at most query.limit matches, examining the store in
  // windows of ids until the page is full, the range is done or the time budget ran out (a rare
  // match in a large store must not hold the thread), so a page can be short, even empty, and
  // still have a next. `continue_from` is the id the next page moves past (next_page_query).
  struct ScanBudget {
    std::int64_t window_ids = 4096;
    std::chrono::microseconds time{10'000};  // checked between windows; at least one window
  };
  struct FilteredPage {
    std::vector<Record> records;
    std::optional<EventId> continue_from;  // nullopt: no match is left in the query's range
  };
  FilteredPage query_filtered(const Query& query, const ScanBudget& budget);
  std::optional<Record> get(EventId id);
  StoreStats stats();
  std::int64_t file_bytes();  // main db file + WAL; 0 for in-memory stores (no scan)
  EventId last_id();
  // Up to `limit` ids below `before` among `topics` (all when empty), newest first: a bounded
  // step for walking back over a topic filter (see Hub::catch_up) instead of one OFFSET walk.
  std::vector<EventId> ids_before(EventId before, const std::vector<std::string>& topics,
                                  int limit);
  // The greatest id whose time is before `time_us` (the cursor for "since TIME"); 0 when none.
  // Times follow ids unless the system clock stepped back; then the newest-by-time event wins.
  EventId cursor_for_time(std::int64_t time_us);

  // Deletes events older than `max_age_us` (relative to now_unix_us()) and/or beyond the newest
  // `max_events`, in one transaction; returns how many rows went. Ids are never reused.
  std::int64_t apply_retention(std::optional<std::int64_t> max_age_us,
                               std::optional<std::int64_t> max_events);

  // Named settings kept with the events (table meta), e.g. which log numbers them, so a node's
  // replica is never mistaken for a standalone store or for another stream's replica.
  std::optional<std::string> setting(std::string_view name);
  void set_setting(std::string_view name, std::string_view value);

  // WAL upkeep (wal.cpp). SQLite checkpoints automatically inside the COMMIT that takes the
  // WAL past 1000 pages, holding that batch's acks back for the page copy and an fsync. With a
  // listener installed it does not: `listener` gets the WAL size in pages after every commit, and
  // a WalCheckpointer checkpoints on its own thread and connection instead.
  void on_wal_commit(std::function<void(int wal_pages)> listener);
  // One PASSIVE checkpoint (the kind SQLite runs itself: it waits for no reader or writer);
  // false when SQLite reported an error.
  bool checkpoint();

  static constexpr int kSchemaVersion = 2;
  const std::string& path() const { return m_path; }

 private:
  void open(Mode mode, Durability durability);
  void migrate(Mode mode);
  AppendResult append_one(const NewEvent& event);
  void rollback() noexcept;
  void close() noexcept;
  std::string m_path;
  sqlite3* m_db = nullptr;
  struct Statements;
  std::unique_ptr<Statements> m_statements;
  std::unique_ptr<std::function<void(int)>> m_wal_listener;  // on the heap: SQLite keeps a pointer
};

}  // namespace evstream
