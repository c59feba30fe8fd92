// The store thread: group commit from a bounded queue. The contract is in writer.hpp.
#include "core/store/writer.hpp"

#include <algorithm>
#include <chrono>
#include <exception>
#include <utility>

namespace evstream {
namespace {

std::int64_t steady_now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Samples nobody takes must not grow without bound; metrics only need the recent ones.
constexpr std::size_t kMaxSamples = 4096;
constexpr std::int64_t kFirstRetryUs =
    10'000;  // a replica batch that failed: first retry after 10 ms,
constexpr std::int64_t kMaxRetryUs = 1'000'000;  // then doubling up to once a second

StoreWriterOptions checked(StoreWriterOptions options) {
  options.max_batch_events = std::max<std::size_t>(options.max_batch_events, 1);
  return options;
}

}  // namespace

StoreWriter::StoreWriter(Store store, StoreWriterOptions options, std::function<void()> notify)
    : m_store(std::move(store)),
      m_options(checked(options)),
      m_notify(std::move(notify)),
      m_thread([this] { run(); }) {}

StoreWriter::~StoreWriter() {
  close();
  if (m_thread.joinable()) m_thread.join();
}

StoreWriter::SubmitResult StoreWriter::submit(NewEvent event, std::uint64_t tag) {
  {
    std::lock_guard lock(m_mutex);
    if (m_closed) return SubmitResult::closed;
    const std::size_t bytes = event.data.size();
    if (m_queue.size() + 1 > m_options.max_queued_events ||
        m_queued_bytes + bytes > m_options.max_queued_bytes) {
      return SubmitResult::full;
    }
    m_queued_bytes += bytes;
    m_queue.emplace_back(tag, std::move(event));
  }
  m_wake.notify_one();
  return SubmitResult::ok;
}

StoreWriter::SubmitResult StoreWriter::submit_all(std::vector<NewEvent>& events,
                                                  std::uint64_t tag) {
  {
    std::lock_guard lock(m_mutex);
    if (m_closed) return SubmitResult::closed;
    std::size_t bytes = 0;
    for (const auto& event : events) bytes += event.data.size();
    if (m_queue.size() + events.size() > m_options.max_queued_events ||
        m_queued_bytes + bytes > m_options.max_queued_bytes) {
      return SubmitResult::full;
    }
    m_queued_bytes += bytes;
    for (auto& event : events) m_queue.emplace_back(tag, std::move(event));
  }
  m_wake.notify_one();
  return SubmitResult::ok;
}

StoreWriter::SubmitResult StoreWriter::submit_wait(NewEvent event, std::uint64_t tag) {
  {
    std::unique_lock lock(m_mutex);
    const std::size_t bytes = event.data.size();
    // An event larger than the byte bound on its own still goes in once the queue is empty.
    m_room.wait(lock, [&] {
      return m_closed || m_queue.empty() ||
             (m_queue.size() + 1 <= m_options.max_queued_events &&
              m_queued_bytes + bytes <= m_options.max_queued_bytes);
    });
    if (m_closed) return SubmitResult::closed;
    m_queued_bytes += bytes;
    m_queue.emplace_back(tag, std::move(event));
  }
  m_wake.notify_one();
  return SubmitResult::ok;
}

std::vector<Committed> StoreWriter::take_committed() {
  std::lock_guard lock(m_mutex);
  return std::exchange(m_committed, {});
}

void StoreWriter::close() {
  {
    std::lock_guard lock(m_mutex);
    m_closed = true;
  }
  m_wake.notify_one();
  m_room.notify_all();
}

bool StoreWriter::drained() const {
  std::lock_guard lock(m_mutex);
  return m_queue.empty() && m_in_progress == 0 && m_committed.empty();
}

std::size_t StoreWriter::queued() const {
  std::lock_guard lock(m_mutex);
  return m_queue.size();
}

std::uint64_t StoreWriter::batches_committed() const {
  std::lock_guard lock(m_mutex);
  return m_batches;
}

std::vector<StoreWriter::BatchSample> StoreWriter::take_batch_samples() {
  std::lock_guard lock(m_mutex);
  return std::exchange(m_samples, {});
}

void StoreWriter::run() {
  // Retention runs between batches (and once at start), never inside one, so acks are not held
  // back by a large delete; after close() the last pass runs before the thread exits.
  Batch batch;
  for (;;) {
    maybe_apply_retention();
    if (!next_batch(batch)) return;
    if (!batch.events.empty()) commit_batch(batch);
  }
}

bool StoreWriter::next_batch(Batch& batch) {
  batch.tags.clear();
  batch.events.clear();
  std::unique_lock lock(m_mutex);
  auto ready = [this] { return m_closed || !m_queue.empty(); };
  // With a zero interval retention simply runs after every batch; no timer is needed.
  if (retention_configured() && m_options.retention_interval_us > 0) {
    const auto due =
        std::chrono::steady_clock::time_point(std::chrono::microseconds(retention_due_us()));
    if (!m_wake.wait_until(lock, due, ready)) return true;  // time for retention, no events
  } else {
    m_wake.wait(lock, ready);
  }
  if (m_queue.empty()) return false;  // closed and nothing left
  const std::size_t n = std::min(m_queue.size(), m_options.max_batch_events);
  for (std::size_t i = 0; i < n; ++i) {
    auto& [tag, event] = m_queue.front();
    m_queued_bytes -= event.data.size();
    batch.tags.push_back(tag);
    batch.events.push_back(std::move(event));
    m_queue.pop_front();
  }
  m_in_progress = n;
  lock.unlock();
  m_room.notify_all();
  return true;
}

void StoreWriter::commit_batch(Batch& batch) {
  std::vector<AppendResult> results;
  std::optional<std::string> error;
  const bool replica = batch.events.front().id != 0;
  const std::int64_t start = steady_now_us();
  for (std::int64_t delay_us = kFirstRetryUs;; delay_us = std::min(2 * delay_us, kMaxRetryUs)) {
    try {
      results = m_store.append(batch.events);
      error.reset();
      break;
    } catch (const std::exception& e) {  // nothing may escape the thread: report it per event
      error = e.what();
      results.assign(batch.events.size(), AppendResult{});
    }
    if (!replica) break;
    {
      std::lock_guard lock(m_mutex);
      ++m_retries.failures;
      m_retries.last_error = *error;
    }
    if (m_notify) m_notify();
    if (!wait_unless_closed(delay_us)) break;
  }
  const std::int64_t elapsed = steady_now_us() - start;
  {
    std::lock_guard lock(m_mutex);
    for (std::size_t i = 0; i < batch.events.size(); ++i) {
      m_committed.push_back(
          Committed{batch.tags[i], std::move(batch.events[i]), results[i], error});
    }
    if (m_samples.size() >= kMaxSamples) m_samples.erase(m_samples.begin());
    m_samples.push_back(BatchSample{elapsed, batch.events.size()});
    if (!error) ++m_batches;
    m_in_progress = 0;
  }
  if (m_notify) m_notify();  // outside the lock: the woken thread calls take_committed() at once
}

bool StoreWriter::wait_unless_closed(std::int64_t delay_us) {
  std::unique_lock lock(m_mutex);
  return !m_wake.wait_for(lock, std::chrono::microseconds(delay_us), [this] { return m_closed; });
}

StoreWriter::RetryReport StoreWriter::replica_retries() const {
  std::lock_guard lock(m_mutex);
  return m_retries;
}

bool StoreWriter::retention_configured() const {
  return m_options.retain_age_us.has_value() || m_options.retain_events.has_value();
}

std::int64_t StoreWriter::retention_due_us() const {
  return m_last_retention_us == 0 ? 0 : m_last_retention_us + m_options.retention_interval_us;
}

void StoreWriter::maybe_apply_retention() {
  if (!retention_configured()) return;
  const std::int64_t now = steady_now_us();
  if (now < retention_due_us()) return;
  m_last_retention_us = now;
  try {
    m_retention_deleted +=
        m_store.apply_retention(m_options.retain_age_us, m_options.retain_events);
  } catch (const std::exception&) {
    // Rolled back; the next interval tries again. Appends report their own failures.
  }
}

}  // namespace evstream
