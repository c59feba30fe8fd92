#include "core/wire/frame.hpp"

#include <algorithm>

namespace evstream {

namespace {
constexpr unsigned char kFinText = 0x81;  // FIN + opcode 1 (text)
}

FramePtr make_text_frame(std::string_view payload, std::int64_t accepted_us) {
  auto frame = std::make_shared<Frame>();
  frame->accepted_us = accepted_us;
  const std::size_t n = payload.size();
  std::string& out = frame->bytes;
  out.reserve(n + 10);
  out += static_cast<char>(kFinText);
  if (n < 126) {
    out += static_cast<char>(n);
  } else if (n <= 0xFFFF) {
    out += static_cast<char>(126);
    out += static_cast<char>((n >> 8) & 0xFF);
    out += static_cast<char>(n & 0xFF);
  } else {
    out += static_cast<char>(127);
    for (int shift = 56; shift >= 0; shift -= 8) {
      out += static_cast<char>((static_cast<std::uint64_t>(n) >> shift) & 0xFF);
    }
  }
  out += payload;
  return frame;
}

std::string_view frame_payload(const Frame& frame) {
  std::string_view bytes = frame.bytes;
  if (bytes.size() < 2) return {};
  const auto len7 = static_cast<unsigned char>(bytes[1]) & 0x7F;
  const std::size_t header = len7 < 126 ? 2 : len7 == 126 ? 4 : 10;
  return bytes.substr(header);
}

void FrameQueue::push(FramePtr frame) {
  if (frame) m_bytes += frame->size();
  m_items.push_back(std::move(frame));
}

bool FrameQueue::fill_placeholder(FramePtr frame) {
  std::size_t i = std::max(m_first_placeholder, m_head);
  for (; i < m_items.size(); ++i) {
    if (m_items[i] == nullptr) {
      m_bytes += frame->size();
      m_items[i] = std::move(frame);
      m_first_placeholder = i + 1;
      return true;
    }
  }
  return false;
}

std::size_t FrameQueue::cut_at_placeholder() {
  std::size_t i = std::max(m_first_placeholder, m_head);
  while (i < m_items.size() && m_items[i] != nullptr) ++i;
  const std::size_t cut = m_items.size() - i;
  for (std::size_t j = i; j < m_items.size(); ++j) {
    if (m_items[j]) m_bytes -= m_items[j]->size();
  }
  m_items.resize(i);
  m_first_placeholder = std::min(m_first_placeholder, i);
  compact();
  return cut;
}

void FrameQueue::pop() {
  if (m_items[m_head]) m_bytes -= m_items[m_head]->size();
  m_items[m_head].reset();
  ++m_head;
  compact();
}

void FrameQueue::clear() {
  m_items = {};
  m_head = 0;
  m_bytes = 0;
  m_first_placeholder = 0;
}

void FrameQueue::compact() {
  if (m_head == m_items.size()) {
    // Drained: give back big buffers so a burst does not pin memory per subscriber.
    if (m_items.capacity() > 64) {
      m_items = {};
    } else {
      m_items.clear();
    }
    m_head = 0;
    m_first_placeholder = 0;
  } else if (m_head >= 64 && m_head * 2 >= m_items.size()) {
    m_items.erase(m_items.begin(), m_items.begin() + static_cast<std::ptrdiff_t>(m_head));
    m_first_placeholder -= std::min(m_first_placeholder, m_head);
    m_head = 0;
  }
}

}  // namespace evstream
