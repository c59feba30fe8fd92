#pragma once
// NATS JetStream as the log of record (serve --nats): several serve nodes share one stream, whose
// sequence numbers are the event ids everywhere. Publishing goes to the stream asynchronously with
// the idempotency key as Nats-Msg-Id; an ordered consumer feeds this node's local SQLite replica
// (through the StoreWriter, like any other batch), so broadcast, catch-up and REST stay one path.
// cnats runs its own threads: everything they learn is queued here under a mutex and announced
// with `notify` (the server passes lws_cancel_service), like the store thread does.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/store/store.hpp"

namespace evstream {

struct JetStreamOptions {
  std::vector<std::string> urls;  // nats://host:port; credentials and tls:// as cnats takes them
  std::string stream = "EVSTREAM";
  int replicas = 1;                             // used when the stream has to be created
  std::int64_t dedupe_window_us = 120'000'000;  // the stream's duplicate window (Nats-Msg-Id)
  std::optional<std::int64_t> retain_age_us;    // MaxAge when the stream is created
  std::optional<std::int64_t> retain_events;    // MaxMsgs when the stream is created
  std::int64_t ack_wait_us = 5'000'000;         // a PubAck not back by then fails the publish
  std::size_t max_pending = 65536;              // publishes awaiting their PubAck at once
};

// The subject evstream publishes a stream's events to (the topic travels in a header, because a
// topic such as "a..b" is not a valid subject).
std::string jetstream_subject(std::string_view stream);

// Stream names: 1-64 of [A-Za-z0-9_-] (NATS forbids '.', '*', '>' and spaces in them).
bool is_valid_stream_name(std::string_view name);

// One publish's outcome: `id` is the stream sequence (the first one's when `duplicate`), or
// `error` says why JetStream did not confirm it (then it may or may not be stored).
struct PublishOutcome {
  std::uint64_t tag = 0;
  EventId id = 0;
  bool duplicate = false;
  std::optional<std::string> error;
};

// What this node sees of the stream, for /api/health and /metrics.
struct JetStreamStatus {
  bool connected = false;
  std::string stream;
  int replicas = 0;
  std::uint64_t last_seq = 0;      // the stream's newest sequence, as last seen
  std::uint64_t delivered = 0;     // newest sequence the consumer handed to the replica
  std::uint64_t reconnects = 0;    // times the connection came back
  std::uint64_t skipped = 0;       // messages in the stream that were not evstream events
  std::uint64_t resubscribes = 0;  // times a stalled consumer was replaced
  std::size_t pending_acks = 0;    // publishes awaiting a PubAck or their release
};

class JetStreamLog {
 public:
  // Connects and makes sure the stream exists with a usable config, creating it when missing.
  // Throws UnavailableError when no NATS server answers or JetStream is off, Error when the
  // stream exists with a config evstream cannot use (named and explained).
  JetStreamLog(JetStreamOptions options, std::function<void()> notify);
  ~JetStreamLog();  // closes the connection: no callback runs after it returns
  JetStreamLog(const JetStreamLog&) = delete;
  JetStreamLog& operator=(const JetStreamLog&) = delete;

  // The stream's first and last sequence now (a blocking request: call before serving).
  std::pair<std::uint64_t, std::uint64_t> stream_bounds();

  // Starts the ordered consumer after `after` (the replica's last id). Each event goes to `sink`
  // on a cnats thread, in sequence order, with NewEvent::id = its sequence and time_us = the
  // stream's timestamp; `sink` may block (that is the backpressure).
  using Sink = std::function<void(NewEvent event)>;
  void follow(EventId after, Sink sink);

  enum class PublishResult { ok, full, closed };
  // Any service thread (serve --threads): outcomes come out in the order of these calls, so a
  // connection's events, all sent from its own thread, keep their order. The outcome arrives
  // through take_outcomes().
  PublishResult publish(const NewEvent& event, std::uint64_t tag);
  // Outcomes in publish order, each only once its id <= `replicated` (so an acked event is
  // already visible on this node), or at once when it failed or `replicated` is nullopt.
  std::vector<PublishOutcome> take_outcomes(std::optional<EventId> replicated);
  void stop_intake();  // publish() answers `closed` from now on
  bool idle() const;   // nothing awaits a PubAck or its release

  JetStreamStatus status() const;

  struct Handles;  // the cnats handles, each with its own owner

 private:
  struct Pending {
    std::uint64_t tag = 0;
    bool answered = false;
    PublishOutcome outcome;
  };
  friend struct JetStreamCallbacks;  // cnats' C callbacks, in jetstream.cpp
  void on_pub_ack(const void* msg, std::uint64_t seq, bool duplicate,
                  std::optional<std::string> error);
  void ensure_stream();
  int subscribe(std::uint64_t after);  // a natsStatus; throws when called from follow()
  void watch();                        // the watchdog thread
  void resubscribe();
  // Records a publish's outcome in its place; m_mutex held.
  void answer(std::uint64_t ticket, std::uint64_t seq, bool duplicate,
              std::optional<std::string> error);

  JetStreamOptions m_options;
  std::string m_subject;
  std::function<void()> m_notify;
  Sink m_sink;
  mutable std::mutex m_mutex;
  std::deque<Pending> m_pending;     // publish order
  std::uint64_t m_first_ticket = 0;  // ticket of m_pending.front()
  std::uint64_t m_next_ticket = 0;
  std::unordered_map<void*, std::uint64_t> m_tickets;  // natsMsg* in flight -> ticket
  // The `replicated` take_outcomes() last saw: a PubAck for a sequence beyond it cannot be
  // released yet, so it need not wake the server (the replica's commit will).
  std::uint64_t m_visible_up_to = 0;
  bool m_closed = false;
  int m_replicas = 0;
  std::atomic<bool> m_connected{false};
  std::atomic<std::uint64_t> m_last_seq{0};
  std::atomic<std::uint64_t> m_delivered{0};
  std::atomic<std::uint64_t> m_reconnects{0};
  std::atomic<std::uint64_t> m_skipped{0};
  std::atomic<std::uint64_t> m_resubscribes{0};
  std::atomic<std::int64_t> m_last_delivery_us{0};  // steady clock
  std::mutex m_watch_mutex;
  std::condition_variable m_watch_cv;
  bool m_watch_stop = false;
  std::thread m_watchdog;  // started by follow(); joined first thing in the destructor
  // Last, so it goes first: its destructor closes the connection and waits out cnats' callbacks
  // while every member they touch still exists (also when the constructor throws).
  std::unique_ptr<Handles> m_handles;
};

}  // namespace evstream
