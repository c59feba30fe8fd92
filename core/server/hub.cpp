#include "core/server/hub.hpp"

#include <algorithm>

#include "core/wire/protocol.hpp"

namespace evstream {

bool Subscriber::wants(std::string_view topic) const {
  if (topics.empty()) return true;
  return std::find(topics.begin(), topics.end(), topic) != topics.end();
}

bool Hub::has_room(const Subscriber& subscriber, std::size_t bytes) const {
  // An empty queue always takes one frame, so one event larger than the byte bound still flows.
  if (subscriber.queue.empty()) return true;
  return subscriber.queue.size() < m_limits.max_messages &&
         subscriber.queue.bytes() + bytes <= m_limits.max_bytes;
}

bool Hub::enqueue(Subscriber& subscriber, FramePtr frame) {
  if (subscriber.overflowed) return false;
  if (!has_room(subscriber, frame->size())) {
    subscriber.overflowed = true;
    subscriber.queue.clear();
    remove(subscriber);
    ++m_slow_consumers;
    m_sink.overflowed(subscriber);
    return false;
  }
  const bool was_empty = subscriber.queue.empty();
  subscriber.queue.push(std::move(frame));
  if (was_empty) m_sink.wake(subscriber);
  return true;
}

void Hub::publish(const Record& record, const FramePtr& frame) {
  std::optional<EventFields> fields;  // built for the first filtered subscriber, then shared
  // Iterate by index: enqueue() may remove the current subscriber (swap with the last one).
  for (std::size_t i = 0; i < m_live.size();) {
    Subscriber& subscriber = *m_live[i];
    // A cursor ahead of the broadcasts: the subscriber asked for since= an id stored and acked on
    // another service thread before this one broadcast it. It has that event already.
    if (record.id <= subscriber.cursor) {
      ++i;
      continue;
    }
    if (subscriber.wants(record.topic)) {
      subscriber.cursor = record.id;
      if (subscriber.filter) {
        if (!fields) fields.emplace(record.data);
        if (!matches(*subscriber.filter, *fields)) {
          ++i;
          continue;
        }
      }
      if (!enqueue(subscriber, frame)) continue;  // removed: slot i now holds another subscriber
    }
    ++i;
  }
}

void Hub::seek_last(Subscriber& subscriber, std::int64_t n, EventId head) {
  subscriber.cursor = head;
  subscriber.seek_remaining = std::max<std::int64_t>(n, 0);
  subscriber.seek_before = head + 1;
}

void Hub::seek_back(Subscriber& subscriber, Store& store) {
  if (subscriber.filter) {
    seek_back_filtered(subscriber, store);
    return;
  }
  const int page =
      static_cast<int>(std::min<std::int64_t>(kCatchUpPage, subscriber.seek_remaining));
  const auto ids = store.ids_before(subscriber.seek_before, subscriber.topics, page);
  if (!ids.empty()) subscriber.seek_before = ids.back();
  subscriber.seek_remaining -= static_cast<std::int64_t>(ids.size());
  if (static_cast<int>(ids.size()) < page) {  // fewer than N stored: all of them
    subscriber.seek_remaining = 0;
    subscriber.cursor = 0;
  } else if (subscriber.seek_remaining == 0) {
    subscriber.cursor = subscriber.seek_before - 1;
  }
}

// last=N with where=: the Nth newest *matching* event, so records are read (a page of them per
// call, newest first) rather than ids.
void Hub::seek_back_filtered(Subscriber& subscriber, Store& store) {
  Query query;
  query.before = subscriber.seek_before;
  query.topics = subscriber.topics;
  query.limit = kCatchUpPage;
  query.order = Order::desc;
  const auto records = store.query(query);
  for (const auto& record : records) {
    subscriber.seek_before = record.id;
    if (!matches(*subscriber.filter, EventFields(record.data))) continue;
    if (--subscriber.seek_remaining == 0) {
      subscriber.cursor = record.id - 1;
      return;
    }
  }
  if (static_cast<int>(records.size()) < kCatchUpPage) {  // fewer than N match: all of them
    subscriber.seek_remaining = 0;
    subscriber.cursor = 0;
  }
}

bool Hub::catch_up(Subscriber& subscriber, Store& store, EventId head) {
  if (subscriber.live || subscriber.overflowed) return subscriber.live;
  if (subscriber.seek_remaining > 0) {
    seek_back(subscriber, store);
    return false;  // one page of work per call; catch-up proper starts on the next
  }
  if (subscriber.cursor >= head) {
    go_live(subscriber);
    return true;
  }
  // Fill at most half the queue so live events and pings still fit behind the page.
  const std::size_t free_messages = m_limits.max_messages / 2 > subscriber.queue.size()
                                        ? m_limits.max_messages / 2 - subscriber.queue.size()
                                        : 0;
  const int page = static_cast<int>(std::min<std::size_t>(kCatchUpPage, free_messages));
  if (page == 0) return false;
  Query query;
  query.after = subscriber.cursor;
  query.before = head + 1;
  query.topics = subscriber.topics;
  query.limit = page;
  query.order = Order::asc;
  const auto records = store.query(query);
  for (const auto& record : records) {
    if (subscriber.filter && !matches(*subscriber.filter, EventFields(record.data))) {
      subscriber.cursor = record.id;  // read past: resume after it
      continue;
    }
    auto frame = make_text_frame(encode_event(record));
    if (subscriber.queue.bytes() + frame->size() > m_limits.max_bytes / 2 &&
        !subscriber.queue.empty()) {
      return false;  // the rest follows once the queue has drained
    }
    subscriber.cursor = record.id;
    enqueue(subscriber, std::move(frame));
  }
  if (static_cast<int>(records.size()) < page) {
    subscriber.cursor = head;  // nothing else matches up to head
    go_live(subscriber);
  }
  return subscriber.live;
}

void Hub::go_live(Subscriber& subscriber) {
  subscriber.live = true;
  subscriber.live_index = m_live.size();
  m_live.push_back(&subscriber);
}

void Hub::remove(Subscriber& subscriber) {
  if (!subscriber.live) return;
  const std::size_t index = subscriber.live_index;
  m_live[index] = m_live.back();
  m_live[index]->live_index = index;
  m_live.pop_back();
  subscriber.live = false;
}

}  // namespace evstream
