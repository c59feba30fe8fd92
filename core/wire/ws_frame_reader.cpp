#include "core/wire/ws_frame_reader.hpp"

#include <algorithm>

namespace evstream {

namespace {

constexpr unsigned char kFin = 0x80;
constexpr unsigned char kReserved = 0x70;
constexpr unsigned char kOpcodeBits = 0x0F;
constexpr unsigned char kMasked = 0x80;
constexpr unsigned char kLength7 = 0x7F;
constexpr std::uint64_t kMaxControlPayload = 125;
// A buffer that grew past this for one big frame or message is given back once it is used, so
// 10,000 subscribers do not each keep the memory of their largest message.
constexpr std::size_t kKeepCapacity = 64 * 1024;

unsigned char byte_at(std::string_view bytes, std::size_t i) {
  return static_cast<unsigned char>(bytes[i]);
}

bool is_control(WsOpcode opcode) {
  return (static_cast<unsigned char>(opcode) & 0x8) != 0;
}

bool is_defined(unsigned char opcode) {
  return opcode <= 0x2 || (opcode >= 0x8 && opcode <= 0xA);
}

void release(std::string& buffer) {
  buffer.clear();
  if (buffer.capacity() > kKeepCapacity) std::string().swap(buffer);
}

}  // namespace

void WsFrameReader::feed(std::string_view bytes) {
  m_input = bytes;
}

std::optional<WsFrameEvent> WsFrameReader::next() {
  release_delivered();
  while (!m_done) {
    Header header;
    std::string_view frame;
    if (m_frame.empty()) {
      // The common case: the whole frame is in the bytes just read, so it is used in place.
      const Parse parsed = parse_header(m_input, header);
      if (parsed == Parse::error) return fail(m_error_code, m_error);
      if (parsed == Parse::need_more || m_input.size() - header.header_size < header.payload_size) {
        m_frame.assign(m_input);
        m_input = {};
        return std::nullopt;
      }
      frame = m_input.substr(0, header.header_size + header.payload_size);
      m_input.remove_prefix(frame.size());
    } else {
      // A frame begun in an earlier read: take exactly the bytes it still lacks (first enough for
      // its header, then its payload), so the copy never exceeds the frame itself.
      Parse parsed;
      while ((parsed = parse_header(m_frame, header)) == Parse::need_more) {
        if (!take_into_frame(m_frame.size() < 2 ? 2 : header.header_size)) return std::nullopt;
      }
      if (parsed == Parse::error) return fail(m_error_code, m_error);
      if (!take_into_frame(header.header_size + header.payload_size)) return std::nullopt;
      frame = m_frame;
      m_frame_delivered = true;
    }
    if (auto event = complete_frame(header, frame.substr(header.header_size))) return event;
    release_delivered();  // a fragment: its payload is in m_message now
  }
  return std::nullopt;
}

// Appends input to m_frame until it holds `wanted` bytes; false when the input ran out first.
bool WsFrameReader::take_into_frame(std::size_t wanted) {
  const std::size_t n = std::min(wanted - m_frame.size(), m_input.size());
  m_frame.append(m_input.data(), n);
  m_input.remove_prefix(n);
  return m_frame.size() == wanted;
}

// Every check that needs only the header is made here, before any payload is waited for, so a
// bad or oversized frame is refused as soon as its first bytes arrive.
WsFrameReader::Parse WsFrameReader::parse_header(std::string_view bytes, Header& header) {
  const auto error = [this](std::uint16_t code, std::string_view why) {
    m_error_code = code;
    m_error = why;
    return Parse::error;
  };
  if (bytes.size() < 2) return Parse::need_more;
  const unsigned char first = byte_at(bytes, 0);
  const unsigned char second = byte_at(bytes, 1);
  const unsigned char opcode = first & kOpcodeBits;
  // No extension is ever negotiated, so no reserved bit may be set (RFC 6455 §5.2).
  if ((first & kReserved) != 0) return error(1002, "reserved bits set in a frame");
  if (!is_defined(opcode)) return error(1002, "frame with an undefined opcode");
  if ((second & kMasked) != 0) return error(1002, "masked frame from the server");
  header.fin = (first & kFin) != 0;
  header.opcode = static_cast<WsOpcode>(opcode);
  const unsigned length7 = second & kLength7;
  if (is_control(header.opcode)) {
    if (!header.fin) return error(1002, "fragmented control frame");
    if (length7 > kMaxControlPayload) return error(1002, "control frame over 125 bytes");
  } else if (header.opcode == WsOpcode::continuation) {
    if (!m_in_message) return error(1002, "continuation frame without a message to continue");
  } else if (m_in_message) {
    return error(1002, "new message before the fragmented one ended");
  }
  header.header_size = length7 < 126 ? 2 : length7 == 126 ? 4 : 10;
  if (bytes.size() < header.header_size) return Parse::need_more;
  if (length7 < 126) {
    header.payload_size = length7;
  } else if (length7 == 126) {
    header.payload_size = (std::uint64_t{byte_at(bytes, 2)} << 8) | byte_at(bytes, 3);
  } else {
    if ((byte_at(bytes, 2) & 0x80) != 0) return error(1002, "64-bit length with the top bit set");
    header.payload_size = 0;
    for (std::size_t i = 2; i < 10; ++i)
      header.payload_size = (header.payload_size << 8) | byte_at(bytes, i);
  }
  const std::size_t so_far = is_control(header.opcode) ? 0 : m_message.size();
  if (header.payload_size > m_max_message - std::min(so_far, m_max_message)) {
    return error(1009, "message too big");
  }
  return Parse::ok;
}

std::optional<WsFrameEvent> WsFrameReader::complete_frame(const Header& header,
                                                          std::string_view payload) {
  if (is_control(header.opcode)) return control_frame(header, payload);
  if (header.fin && !m_in_message) {
    return WsFrameEvent{.kind = WsFrameEvent::Kind::message,
                        .binary = header.opcode == WsOpcode::binary,
                        .payload = payload};
  }
  if (header.opcode != WsOpcode::continuation) {
    m_in_message = true;
    m_message_binary = header.opcode == WsOpcode::binary;
  }
  m_message.append(payload);
  if (!header.fin) return std::nullopt;
  m_in_message = false;
  m_message_delivered = true;
  return WsFrameEvent{
      .kind = WsFrameEvent::Kind::message, .binary = m_message_binary, .payload = m_message};
}

// Control frames may come between the fragments of a message (RFC 6455 §5.4); they leave it alone.
std::optional<WsFrameEvent> WsFrameReader::control_frame(const Header& header,
                                                         std::string_view payload) {
  switch (header.opcode) {
    case WsOpcode::ping:
      return WsFrameEvent{.kind = WsFrameEvent::Kind::ping, .payload = payload};
    case WsOpcode::pong:
      return WsFrameEvent{.kind = WsFrameEvent::Kind::pong, .payload = payload};
    default: {
      if (payload.size() == 1) return fail(1002, "close frame with a 1-byte payload");
      m_done = true;
      WsFrameEvent event{.kind = WsFrameEvent::Kind::close, .close_code = 1005};
      if (payload.size() >= 2) {
        event.close_code =
            static_cast<std::uint16_t>((byte_at(payload, 0) << 8) | byte_at(payload, 1));
        event.payload = payload.substr(2);
      }
      return event;
    }
  }
}

WsFrameEvent WsFrameReader::fail(std::uint16_t code, std::string_view why) {
  m_done = true;
  m_input = {};
  return WsFrameEvent{.kind = WsFrameEvent::Kind::error, .close_code = code, .error = why};
}

void WsFrameReader::release_delivered() {
  if (m_frame_delivered) release(m_frame);
  if (m_message_delivered) release(m_message);
  m_frame_delivered = false;
  m_message_delivered = false;
}

}  // namespace evstream
