// The hand-off from the log to the service threads; the contract is in fanout.hpp.
#include "core/server/fanout.hpp"

#include "core/store/jetstream.hpp"
#include "core/store/writer.hpp"
#include "core/wire/protocol.hpp"

namespace evstream {

std::optional<std::size_t> owner_of(std::uint64_t tag, std::size_t threads) {
  const std::uint64_t id = tag & ~kHttpTagBit;
  if (id == 0 || threads == 0) return std::nullopt;
  return static_cast<std::size_t>((id - 1) % threads);
}

void Inbox::push(Handoff handoff) {
  bool wake = false;
  {
    std::lock_guard lock(m_mutex);
    m_items.push_back(std::move(handoff));
    wake = !m_wake_pending;
    m_wake_pending = true;
  }
  if (wake && m_wake) m_wake();
}

std::vector<Handoff> Inbox::take() {
  std::lock_guard lock(m_mutex);
  m_wake_pending = false;
  return std::exchange(m_items, {});
}

bool Inbox::empty() const {
  std::lock_guard lock(m_mutex);
  return m_items.empty();
}

void Fanout::start(StoreWriter& writer, JetStreamLog* jetstream, std::vector<Inbox*> inboxes) {
  std::lock_guard lock(m_mutex);
  m_writer = &writer;
  m_jetstream = jetstream;
  m_inboxes = std::move(inboxes);
}

void Fanout::stop() {
  std::lock_guard lock(m_mutex);
  m_writer = nullptr;
  m_jetstream = nullptr;
  m_inboxes.clear();
}

void Fanout::stop_serving() {
  std::lock_guard lock(m_mutex);
  m_serving = false;
}

bool Fanout::drained() const {
  // Under the lock: a pump between taking from the log and filling the inboxes is not drained.
  std::lock_guard lock(m_mutex);
  if (m_writer == nullptr) return true;
  return m_jetstream != nullptr ? m_jetstream->idle() : m_writer->drained();
}

FanoutStats Fanout::stats() const {
  std::lock_guard lock(m_mutex);
  return m_stats;
}

std::uint64_t Fanout::events_in() const {
  std::lock_guard lock(m_mutex);
  return m_stats.events_in;
}

void Fanout::take_samples() {
  for (const auto& sample : m_writer->take_batch_samples()) {
    m_stats.store_commit_us.record(sample.commit_us);
    m_stats.store_batch_events.record(static_cast<std::int64_t>(sample.events));
  }
  if (m_jetstream == nullptr) return;
  // The store thread retries a replica batch that failed until it commits (never a hole).
  const auto retries = m_writer->replica_retries();
  if (retries.failures > m_stats.replica_commit_failures) {
    m_stats.replica_commit_failures = retries.failures;
    m_log.error(
        "replica commit failed, retrying",
        {{"failures", static_cast<std::int64_t>(retries.failures)}, {"error", retries.last_error}});
  }
}

void Fanout::pump() {
  // One pump at a time, so every inbox receives the batches in id order. Frames are encoded
  // here, once, on whichever thread pumps (usually the store thread, right after its commit).
  std::lock_guard lock(m_mutex);
  if (m_writer == nullptr) return;
  take_samples();
  const std::size_t threads = m_inboxes.size();
  std::vector<std::vector<PublishReply>> replies(threads);
  const auto route = [&](PublishReply reply) {
    if (const auto owner = owner_of(reply.tag, threads))
      replies[*owner].push_back(std::move(reply));
  };
  auto batch = std::make_shared<std::vector<Broadcast>>();
  const std::int64_t now = now_unix_us();
  EventId head = m_head.load(std::memory_order_relaxed);
  for (auto& committed : m_writer->take_committed()) {
    if (!committed.error && !committed.result.duplicate) {
      Record record{committed.result.id, std::move(committed.event.topic), committed.result.time_us,
                    std::move(committed.event.data)};
      auto frame = make_text_frame(encode_event(record), record.time_us);
      m_stats.ingest_to_handoff_us.record(now - record.time_us);
      ++m_stats.events_in;
      head = record.id;
      batch->push_back(Broadcast{std::move(record), std::move(frame)});
    }
    if (m_jetstream != nullptr) continue;  // cluster mode: JetStream's PubAck is the ack
    if (!committed.error && committed.result.duplicate) ++m_stats.duplicates;
    route(PublishReply{committed.tag, committed.result, std::move(committed.error), false});
  }
  // Release-store before the inboxes see the batch: a thread that learns an id from its inbox
  // (or from a client acked by another thread) finds head() at least that far.
  m_head.store(head, std::memory_order_release);
  if (m_jetstream != nullptr) {
    // An ack waits until this node's replica has the event, so whoever was acked can read it here
    // at once; once serving ends, JetStream's word is enough.
    const std::optional<EventId> replicated =
        m_serving ? std::optional<EventId>(head) : std::nullopt;
    for (auto& outcome : m_jetstream->take_outcomes(replicated)) {
      if (!outcome.error && outcome.duplicate) ++m_stats.duplicates;
      const bool unconfirmed = outcome.error.has_value();
      route(PublishReply{
          outcome.tag, {outcome.id, 0, outcome.duplicate}, std::move(outcome.error), unconfirmed});
    }
  }
  const BroadcastBatch shared = batch->empty() ? nullptr : BroadcastBatch(std::move(batch));
  for (std::size_t i = 0; i < threads; ++i) {
    if (!shared && replies[i].empty()) continue;
    m_inboxes[i]->push(Handoff{shared, std::move(replies[i])});
  }
}

}  // namespace evstream
