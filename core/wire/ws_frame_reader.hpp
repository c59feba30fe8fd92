#pragma once
// Reads the frames a WebSocket server sends (RFC 6455 §5) from the bytes of a client socket: the
// receive path of loadtest's raw subscribers. Server frames are unmasked, so a whole message that
// arrived in one read is handed over as a view of those bytes, with no copy and no per-byte state
// machine. Only what spans reads is copied: the unfinished frame (never more than its own bytes)
// and the fragments of an unfinished message. Text is not UTF-8 validated here: the consumer scans
// it for ASCII markers, and validating would walk every byte again. One owner, one thread.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/wire/ws_opcode.hpp"

namespace evstream {

struct WsFrameEvent {
  enum class Kind { message, ping, pong, close, error };
  Kind kind = Kind::message;
  bool binary = false;            // message: an opcode 2 message (else text)
  std::string_view payload = {};  // message, ping and pong payload; close: the reason text
  // close: the status code sent, 1005 when the frame had none. error: the code to close with
  // (1002 protocol error, 1009 message too big).
  std::uint16_t close_code = 0;
  std::string_view error = {};  // error: what was wrong (a static string)
};

class WsFrameReader {
 public:
  // A message (all its fragments) or a frame larger than this is an error (1009): what a peer
  // can make us buffer. 64 MiB is far above any event the server accepts.
  static constexpr std::size_t kDefaultMaxMessage = std::size_t{64} << 20;
  explicit WsFrameReader(std::size_t max_message = kDefaultMaxMessage)
      : m_max_message(max_message) {}

  // The next bytes read from the socket. They must stay valid until next() returns nullopt,
  // which it does only once it has taken them all (an unfinished frame is then copied).
  void feed(std::string_view bytes);
  // The next whole message or control frame, or nullopt when more bytes are needed. Views in the
  // event are valid until the following call to next() or feed(). After a close or an error the
  // reader is done() and returns nullopt for good.
  std::optional<WsFrameEvent> next();
  bool done() const { return m_done; }
  // Bytes held across reads (the unfinished frame and message), for tests and limits.
  std::size_t buffered() const { return m_frame.size() + m_message.size(); }

 private:
  struct Header {
    bool fin = false;
    WsOpcode opcode = WsOpcode::continuation;
    std::size_t header_size = 0;
    std::uint64_t payload_size = 0;
  };
  enum class Parse { ok, need_more, error };
  Parse parse_header(std::string_view bytes, Header& header);
  bool take_into_frame(std::size_t wanted);
  std::optional<WsFrameEvent> complete_frame(const Header& header, std::string_view payload);
  std::optional<WsFrameEvent> control_frame(const Header& header, std::string_view payload);
  WsFrameEvent fail(std::uint16_t code, std::string_view why);
  void release_delivered();

  std::size_t m_max_message;
  std::string_view m_input;  // fed bytes not consumed yet
  std::string m_frame;       // the bytes of one unfinished frame, when it spans reads
  std::string m_message;     // payload of the fragments so far, when a message is fragmented
  bool m_in_message = false;
  bool m_message_binary = false;
  bool m_frame_delivered = false;    // m_frame backs the last event: clear it on the next call
  bool m_message_delivered = false;  // m_message backs the last event
  bool m_done = false;
  std::string_view m_error;  // the error found while parsing a header
  std::uint16_t m_error_code = 0;
};

}  // namespace evstream
