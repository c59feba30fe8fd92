#pragma once
// `evstream replay`: stored events in id order, from an SQLite file or a server's REST API,
// written as NDJSON (records or bare data) or republished through the publisher, optionally
// paced by their original `time`. Sources read a page at a time, so memory stays constant.
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/client/publisher.hpp"
#include "core/store/store.hpp"
#include "core/util/error.hpp"
#include "core/util/util.hpp"
#include "core/wire/event.hpp"
#include "core/wire/filter.hpp"

namespace evstream {

class ClientLoop;

// Which stored events to replay. `after` is exclusive, so `--since 42` resumes after 42 the way
// tail does; `until_id` and both times are inclusive, so `--since A --until B` then
// `--since B --until C` replay consecutive ranges without a gap or an overlap.
struct ReplayFilter {
  std::optional<EventId> after;
  std::optional<EventId> until_id;
  std::optional<std::int64_t> since_us;
  std::optional<std::int64_t> until_us;
  std::vector<std::string> topics;  // empty: every topic
};

// A --since/--until value: an event id, or a time in microseconds since the epoch.
struct ReplayTime {
  std::int64_t unix_us = 0;
};
using ReplayBound = std::variant<EventId, ReplayTime>;

// Parses a bound: a bare whole number is an event id, else an RFC 3339 time, else a duration
// ago with a unit ("90m", resolved against now_us). nullopt when it is none of these.
std::optional<ReplayBound> parse_replay_bound(std::string_view text, std::int64_t now_us);

// The first page query for `filter`, bounded above by `last_id` (the newest id when the replay
// starts: events stored later are not replayed, so a busy server cannot make it run forever).
Query replay_query(const ReplayFilter& filter, EventId last_id, int page_size);

// The server of a REST source could not be reached (a connection failure or a timeout). Other
// source failures (an unreadable database, an HTTP error) are plain evstream::Error.
class SourceUnreachable : public Error {
 public:
  using Error::Error;
};

// Stored records in increasing id order, one page at a time. Used by one thread at a time.
class RecordSource {
 public:
  virtual ~RecordSource() = default;
  // Replaces `page` with the next records; false once there are none left (or after
  // interrupt()). Throws evstream::Error (SourceUnreachable) when the source fails.
  virtual bool next_page(std::vector<Record>& page) = 0;
  // Thread-safe: makes a blocked next_page() return false promptly.
  virtual void interrupt() {}
};

// Only the records of `inner` whose data matches `filter` (replay --where), a page at a time.
// The filter is applied here, on the client, so it works with every source.
class FilteredSource final : public RecordSource {
 public:
  FilteredSource(std::unique_ptr<RecordSource> inner, Filter filter)
      : m_inner(std::move(inner)), m_filter(std::move(filter)) {}
  bool next_page(std::vector<Record>& page) override;
  void interrupt() override { m_inner->interrupt(); }

 private:
  std::unique_ptr<RecordSource> m_inner;
  Filter m_filter;
};

// Reads a database file through a read-only Store (works while a server writes to it).
class StoreSource final : public RecordSource {
 public:
  // Opens `path`; throws evstream::Error when it is missing or not an evstream database.
  StoreSource(const std::string& path, ReplayFilter filter, int page_size = kMaxQueryLimit);
  bool next_page(std::vector<Record>& page) override;

 private:
  Store m_store;
  ReplayFilter m_filter;
  int m_page_size;
  std::optional<Query> m_query;  // set by the first page
  bool m_done = false;
};

// Reads GET /api/events pages of a server, on its own client loop. With several servers (nodes
// of one cluster, which serve the same ids) a request that cannot reach one is tried on the next,
// in order, once each; the source then stays with the server that answered.
class RestSource final : public RecordSource {
 public:
  // `servers` must not be empty. `read_token` is sent as ?token= (empty: none). No request is
  // made before next_page().
  RestSource(std::vector<WsUrl> servers, ReplayFilter filter, std::string read_token,
             int page_size = kMaxQueryLimit);
  ~RestSource() override;
  bool next_page(std::vector<Record>& page) override;
  void interrupt() override;

 private:
  std::optional<std::string> get(const std::string& path);  // nullopt: interrupted
  const WsUrl& server() const { return m_servers[m_current]; }
  std::unique_ptr<ClientLoop> m_loop;
  std::vector<WsUrl> m_servers;
  std::size_t m_current = 0;
  ReplayFilter m_filter;
  std::string m_token;
  int m_page_size;
  std::optional<Query> m_query;
  bool m_done = false;
};

// Spaces records as their `time`s were spaced, divided by `speed`: record i is due at
// start + (time_i - time_0) / speed on a monotonic clock, so waiting late for one record does not
// delay the ones after it. Speed 0 never waits.
class Pacer {
 public:
  using Clock = std::function<std::int64_t()>;  // monotonic microseconds
  explicit Pacer(double speed, Clock clock = monotonic_now_us);
  // How long to wait before emitting a record with this time; the first record anchors the
  // schedule and is due at once.
  std::int64_t delay_us(std::int64_t record_time_us);
  static std::int64_t monotonic_now_us();

 private:
  double m_speed;
  Clock m_clock;
  std::optional<std::int64_t> m_first_time;
  std::int64_t m_start = 0;
};

// A stop request shared between a signal watcher and the replaying thread.
class StopFlag {
 public:
  void request();  // thread-safe
  bool requested() const;
  // Sleeps up to `us`; false when a stop was requested before or meanwhile.
  bool sleep_for(std::int64_t us);

 private:
  mutable std::mutex m_mutex;
  std::condition_variable m_wake;
  bool m_stop = false;
};

// What replay_to_file writes per record: the record JSON, or only its data object (the lines
// `evstream publish` reads).
enum class ReplayFormat { records, data };

struct ReplayResult {
  enum class End { done, output_closed, interrupted } end = End::done;
  std::uint64_t records = 0;
};

// Writes every record of `source` to `out` as NDJSON, paced by `pacer`, until the source ends,
// `stop` is requested or the output is closed (EPIPE; the caller should ignore SIGPIPE). Throws
// evstream::Error from the source and on other write errors.
ReplayResult replay_to_file(RecordSource& source, Pacer& pacer, StopFlag& stop, std::FILE* out,
                            ReplayFormat format = ReplayFormat::records);

struct RepublishResult {
  PublishSummary summary;
  ReplayResult replay;
  std::string source_error;  // empty when the source was read to the end (or interrupted)
  bool source_unreachable = false;
};

// Republishes every record of `source` with its topic through run_publish (acks, reconnects,
// idempotency keys): a thread reads and paces the source and writes envelopes into a socket pair
// whose other end is the publisher's input (`publish.input_fd` and `events` are overwritten).
// Runs `loop` on the calling thread. To interrupt (Ctrl-C): stop.request(), source.interrupt()
// and loop.stop(), from any thread.
RepublishResult replay_to_server(RecordSource& source, Pacer& pacer, StopFlag& stop,
                                 PublishOptions publish, ClientLoop& loop);

}  // namespace evstream
