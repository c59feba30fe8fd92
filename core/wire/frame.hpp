#pragma once
// Outbound WebSocket frames, built once and shared. A server -> client frame is unmasked, so its
// complete bytes (header + payload) are the same for every subscriber: the hub builds one Frame per
// event and every subscriber queue holds a shared_ptr to it. Frames are immutable after creation,
// and all queues live on the service thread, so sharing needs no locking.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace evstream {

struct Frame {
  std::string bytes;  // a complete text frame: WebSocket header + payload
  // For a live broadcast: when the server accepted the event (Unix us), so each write can record
  // the delivery latency; 0 for replies, pings and catch-up.
  std::int64_t accepted_us = 0;
  std::size_t size() const { return bytes.size(); }
};
using FramePtr = std::shared_ptr<const Frame>;

// Wraps a text payload into one complete, unmasked, final WebSocket text frame.
FramePtr make_text_frame(std::string_view payload, std::int64_t accepted_us = 0);

// The payload of a frame made by make_text_frame (for tests and logs).
std::string_view frame_payload(const Frame& frame);

// A FIFO of shared frames with a byte count. An empty queue owns no heap memory (10,000 idle
// subscribers must stay small), and capacity is released when it drains. A null entry is a
// placeholder for a reply not known yet (a publisher's pending ack); pop stops at it.
class FrameQueue {
 public:
  bool empty() const { return m_head == m_items.size(); }
  std::size_t size() const { return m_items.size() - m_head; }
  std::size_t bytes() const { return m_bytes; }
  const FramePtr& front() const { return m_items[m_head]; }
  bool front_ready() const { return !empty() && front() != nullptr; }

  void push(FramePtr frame);
  void push_placeholder() { push(nullptr); }
  // Fills the oldest placeholder; returns false when there is none.
  bool fill_placeholder(FramePtr frame);
  // Drops the oldest placeholder and everything queued after it (replies that must not be sent
  // once one in the middle is missing); returns how many items went.
  std::size_t cut_at_placeholder();
  void pop();
  void clear();

 private:
  void compact();
  std::vector<FramePtr> m_items;
  std::size_t m_head = 0;
  std::size_t m_bytes = 0;
  std::size_t m_first_placeholder = 0;  // search start for fill_placeholder
};

}  // namespace evstream
