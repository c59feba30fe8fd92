#pragma once
// The store thread: takes events from a bounded queue and commits them in batches (group commit:
// one transaction per batch, so durability=full costs one fsync per batch, not per event), then
// hands each committed batch back. Other threads only call submit()/take_committed()/close().
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/store/store.hpp"

namespace evstream {

struct StoreWriterOptions {
  std::size_t max_queued_events = 65536;      // submit() answers `full` past this many...
  std::size_t max_queued_bytes = 256u << 20;  // ...or past this many bytes of data
  std::size_t max_batch_events = 1024;        // one transaction holds at most this many
  std::optional<std::int64_t> retain_age_us;  // retention, applied by the store thread
  std::optional<std::int64_t> retain_events;
  std::int64_t retention_interval_us = 10'000'000;  // how often retention runs; <= 0: per batch
};

// One event after its transaction: the caller's tag, the outcome, and the event itself (moved
// through so the caller can build the record without a copy). `error` is set when the
// transaction failed; then nothing of that batch was stored.
struct Committed {
  std::uint64_t tag = 0;
  NewEvent event;
  AppendResult result;
  std::optional<std::string> error;
};

class StoreWriter {
 public:
  // `notify` runs on the store thread after a batch is ready in take_committed(); the server
  // passes a function that calls lws_cancel_service. It must be cheap and must not throw.
  StoreWriter(Store store, StoreWriterOptions options, std::function<void()> notify);
  ~StoreWriter();  // close() then join
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;

  enum class SubmitResult { ok, full, closed };
  SubmitResult submit(NewEvent event, std::uint64_t tag);
  // As submit(), for several events under one tag, all or none: `full` when they do not all fit
  // (then nothing was queued), so a request's events are never half stored because another
  // thread submitted in between. Moves from `events` only on `ok`.
  SubmitResult submit_all(std::vector<NewEvent>& events, std::uint64_t tag);
  // As submit(), but waits for room instead of answering `full`: for a feed that must not drop
  // and can wait (a replica's consumer thread; the log behind it holds what is not yet taken).
  SubmitResult submit_wait(NewEvent event, std::uint64_t tag);

  // Everything committed since the last call, in submission order.
  std::vector<Committed> take_committed();

  // Stops intake; the thread commits what is queued, then exits. Idempotent.
  void close();
  // True when nothing is queued, nothing is being committed and nothing waits in take_committed.
  bool drained() const;
  std::size_t queued() const;  // events waiting for a transaction
  std::uint64_t batches_committed() const;
  // Rows deleted by retention so far (thread-safe).
  std::int64_t retention_deleted() const { return m_retention_deleted.load(); }

  // Duration and size of each transaction since the last call (the newest 4096 at most), for
  // metrics (read by the service thread). Failed transactions are sampled too.
  struct BatchSample {
    std::int64_t commit_us;
    std::size_t events;
  };
  std::vector<BatchSample> take_batch_samples();

  // A replica's batch (events numbered by the log of record, NewEvent::id set) is never given up:
  // skipping it would leave a hole that since= resumes across without a word. It is retried, with
  // backoff, until it commits or the writer closes. The failures so far and the last reason:
  struct RetryReport {
    std::uint64_t failures = 0;
    std::string last_error;
  };
  RetryReport replica_retries() const;

 private:
  // Events taken from the queue for one transaction; tags[i] belongs to events[i] (two vectors
  // because Store::append wants the events contiguous).
  struct Batch {
    std::vector<std::uint64_t> tags;
    std::vector<NewEvent> events;
  };
  void run();
  bool next_batch(Batch& batch);  // waits; false once closed and the queue is empty
  void commit_batch(Batch& batch);
  // Waits `delay_us` unless the writer closes first; false when closed.
  bool wait_unless_closed(std::int64_t delay_us);
  void maybe_apply_retention();
  bool retention_configured() const;
  std::int64_t retention_due_us() const;  // steady-clock time of the next retention run

  Store m_store;
  StoreWriterOptions m_options;
  std::function<void()> m_notify;
  mutable std::mutex m_mutex;
  std::condition_variable m_wake;
  std::condition_variable m_room;  // submit_wait() waits here for the queue to shrink
  std::deque<std::pair<std::uint64_t, NewEvent>> m_queue;
  std::size_t m_queued_bytes = 0;
  std::size_t m_in_progress = 0;
  std::vector<Committed> m_committed;
  std::vector<BatchSample> m_samples;
  std::uint64_t m_batches = 0;
  RetryReport m_retries;
  bool m_closed = false;
  std::int64_t m_last_retention_us = 0;
  std::atomic<std::int64_t> m_retention_deleted{0};  // steady clock; 0 = never, so it runs at start
  std::thread m_thread;                              // last: starts after every member above exists
};

}  // namespace evstream
