#pragma once
// The hand-off from the log to the service threads. Whichever thread learns that something was
// stored or confirmed (the store thread after a commit, a NATS client thread after a PubAck, a
// service thread at shutdown) calls Fanout::pump(), which turns each newly stored event into one
// immutable Broadcast (record plus encoded frame) in a batch shared by every service thread, and
// routes each publish outcome to the one thread that owns its connection. Each service thread
// takes its share from its own Inbox, woken by the inbox's wake callback (lws_cancel_service on
// its own context). No sockets here: the unit tests drive it with plain threads.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/store/store.hpp"
#include "core/util/histogram.hpp"
#include "core/util/log.hpp"
#include "core/wire/event.hpp"
#include "core/wire/frame.hpp"

namespace evstream {

class StoreWriter;
class JetStreamLog;

// Tags name who waits for a publish: a WebSocket connection id, or an HTTP request's tag with
// this bit set. Both come from connection_id(), so their low 63 bits also name the thread.
inline constexpr std::uint64_t kHttpTagBit = std::uint64_t{1} << 63;

// The `n`th id (n = 0, 1, ...) service thread `index` of `threads` hands out. Ids interleave
// (thread 0: 1, 1+T, 1+2T, ...), so they are unique in the process and owner_of() finds their
// thread without a table; with one thread they are 1, 2, 3, ...
constexpr std::uint64_t connection_id(std::size_t index, std::size_t threads, std::uint64_t n) {
  return n * threads + index + 1;
}

// The service thread that owns `tag` (see kHttpTagBit); nullopt for tag 0 (a replica's event,
// which nobody waits for).
std::optional<std::size_t> owner_of(std::uint64_t tag, std::size_t threads);

// One stored event as every service thread broadcasts it: the record (its topic and data are
// what subscriptions filter on) and its frame, encoded once. Never changed once handed out, so
// the threads share it without locks.
struct Broadcast {
  Record record;
  FramePtr frame;
};
using BroadcastBatch = std::shared_ptr<const std::vector<Broadcast>>;

// A publish's outcome, for the thread whose connection (or HTTP request) sent it.
struct PublishReply {
  std::uint64_t tag = 0;
  AppendResult result;               // id and duplicate; time unset in cluster mode
  std::optional<std::string> error;  // set: not stored (or, when unconfirmed, maybe stored)
  bool unconfirmed = false;          // cluster mode: JetStream did not confirm; resend later
};

// What one pump hands one service thread: events to broadcast (in id order), then replies (in
// the order their events were submitted). A reply never comes before its event's broadcast.
struct Handoff {
  BroadcastBatch broadcasts;  // null when that pump broadcast nothing
  std::vector<PublishReply> replies;
};

// One service thread's mailbox. Any thread pushes; the owner takes.
class Inbox {
 public:
  // `wake` runs on the pushing thread, outside the lock, after the first push since the owner's
  // last take(): a burst of pushes costs the owner one wake-up. It must be cheap and not throw.
  explicit Inbox(std::function<void()> wake) : m_wake(std::move(wake)) {}
  Inbox(const Inbox&) = delete;
  Inbox& operator=(const Inbox&) = delete;

  void push(Handoff handoff);
  // Everything pushed so far, oldest first. Whatever is pushed after this wakes the owner again.
  std::vector<Handoff> take();
  bool empty() const;

 private:
  mutable std::mutex m_mutex;
  std::vector<Handoff> m_items;
  bool m_wake_pending = false;
  std::function<void()> m_wake;
};

// Process-wide figures the fan-out keeps (each event counted once, however many threads).
struct FanoutStats {
  std::uint64_t events_in = 0;   // events stored and broadcast
  std::uint64_t duplicates = 0;  // publishes answered with an earlier event's id
  std::uint64_t replica_commit_failures = 0;
  Histogram store_commit_us;       // one sample per store transaction
  Histogram store_batch_events;    // events per store transaction
  Histogram ingest_to_handoff_us;  // acceptance to the hand-off to the service threads
};

class Fanout {
 public:
  // `head`: the newest id stored before the log starts; `log` reports replica commit failures.
  Fanout(Logger& log, EventId head) : m_log(log), m_head(head) {}
  Fanout(const Fanout&) = delete;
  Fanout& operator=(const Fanout&) = delete;

  // From now on pump() takes from `writer` (and, in cluster mode, `jetstream`: then acks come
  // from it) and fills `inboxes`, inbox i belonging to service thread i. Before anything is
  // submitted; pump() does nothing until then.
  void start(StoreWriter& writer, JetStreamLog* jetstream, std::vector<Inbox*> inboxes);
  // pump() does nothing from now on; call it before the writer or JetStream log goes.
  void stop();

  // Any thread: hands out everything newly committed and every outcome now releasable.
  void pump();
  // Serving has ended: cluster acks no longer wait for this node's replica to hold their event.
  void stop_serving();
  // Nothing stored or confirmed remains to be handed out, and nothing is pending in the log.
  bool drained() const;

  // The newest id handed out (any thread; it may be ahead of a service thread's own head).
  EventId head() const { return m_head.load(std::memory_order_acquire); }
  FanoutStats stats() const;        // a copy, histograms included (for /metrics)
  std::uint64_t events_in() const;  // stats().events_in without the copy (for health)

 private:
  void take_samples();  // m_mutex held

  Logger& m_log;
  mutable std::mutex m_mutex;
  StoreWriter* m_writer = nullptr;
  JetStreamLog* m_jetstream = nullptr;
  std::vector<Inbox*> m_inboxes;
  bool m_serving = true;
  std::atomic<EventId> m_head;
  FanoutStats m_stats;
};

}  // namespace evstream
