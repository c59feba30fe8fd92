#pragma once
// The subscriber registry: topic filters, bounded per-subscriber queues, the slow-consumer policy
// and catch-up from the store. Each service thread has its own, for its own subscribers; it knows
// nothing of sockets: it tells its Sink when a subscriber has something to write or must be closed.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/store/store.hpp"
#include "core/wire/event.hpp"
#include "core/wire/filter.hpp"
#include "core/wire/frame.hpp"

namespace evstream {

struct Subscriber {
  std::uint64_t id = 0;
  std::vector<std::string> topics;  // empty: every topic
  // where=: only events whose data matches (shared and immutable; null for most subscribers, so
  // the broadcast loop costs them one pointer test).
  std::shared_ptr<const Filter> filter;
  FrameQueue queue;
  EventId cursor = 0;  // the newest id queued to this subscriber (catch-up resumes after it)
  // last=N over a topic filter: matching events still to count back from `seek_before` before
  // catch-up can start; the walk goes one page per catch_up call, like catch-up itself.
  std::int64_t seek_remaining = 0;
  EventId seek_before = 0;
  bool live = false;  // in the live list: receives events as they are broadcast
  bool overflowed = false;
  std::size_t live_index = 0;  // position in Hub's live list while live
  bool wants(std::string_view topic) const;
};

// Bounds per subscriber queue. Past either, the subscriber is a slow consumer: its queue is
// dropped and it is closed with 1008 "slow consumer"; it can reconnect with since= and lose
// nothing, because everything it missed is in the store.
struct QueueLimits {
  std::size_t max_messages = 4096;
  std::size_t max_bytes = 1u << 20;
};

class HubSink {
 public:
  virtual ~HubSink() = default;
  virtual void wake(Subscriber& subscriber) = 0;        // has frames to write
  virtual void overflowed(Subscriber& subscriber) = 0;  // past its queue bounds: close it
};

class Hub {
 public:
  Hub(QueueLimits limits, HubSink& sink) : m_limits(limits), m_sink(sink) {}

  // Queues `frame` for one subscriber; false (and the sink told) when that overflowed it.
  bool enqueue(Subscriber& subscriber, FramePtr frame);
  // Queues the event's shared frame for every live subscriber that wants its topic and whose
  // filter (if any) it matches, and whose cursor is below its id (so a subscriber that went live
  // ahead of this hub's broadcasts gets nothing twice); the event's fields are indexed once, and
  // only when some live subscriber has a filter.
  void publish(const Record& record, const FramePtr& frame);

  // Queues the next catch-up page for a subscriber that is not live yet: stored events with
  // cursor < id <= `head` (the newest id already broadcast). Once it has reached `head` the
  // subscriber joins the live list, so every later event reaches it exactly once. Returns true when
  // the subscriber is live. Reads at most one page, so the service loop never stalls; while the
  // subscriber still seeks back (seek_remaining > 0) that page is a page of ids walked back.
  bool catch_up(Subscriber& subscriber, Store& store, EventId head);
  // Starts last=N for a subscriber with a topic filter: catch-up begins after the Nth newest
  // matching event at or below `head`, found page by page.
  static void seek_last(Subscriber& subscriber, std::int64_t n, EventId head);

  void remove(Subscriber& subscriber);  // leaves the live list (no-op when not live)
  std::size_t live_count() const { return m_live.size(); }
  const QueueLimits& limits() const { return m_limits; }
  std::uint64_t slow_consumers() const { return m_slow_consumers; }

  static constexpr int kCatchUpPage = 256;

 private:
  void go_live(Subscriber& subscriber);
  static void seek_back(Subscriber& subscriber, Store& store);
  static void seek_back_filtered(Subscriber& subscriber, Store& store);
  bool has_room(const Subscriber& subscriber, std::size_t bytes) const;

  QueueLimits m_limits;
  HubSink& m_sink;
  std::vector<Subscriber*> m_live;
  std::uint64_t m_slow_consumers = 0;
};

}  // namespace evstream
