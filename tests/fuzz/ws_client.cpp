// Fuzz target: what loadtest's raw subscribers read from a server socket (core/wire/
// ws_frame_reader.hpp, ws_handshake.hpp). The first byte picks how the rest is cut into reads;
// the invariant is that the cutting never changes what is read, and that the reader holds no
// more than one frame and one message across reads.
#include <string>
#include <vector>

#include "core/wire/ws_frame_reader.hpp"
#include "core/wire/ws_handshake.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

using namespace evstream;

constexpr std::size_t kMaxMessage = 4096;  // small, so "message too big" is reachable

struct Seen {
  WsFrameEvent::Kind kind;
  bool binary;
  std::string payload;
  std::uint16_t code;
  std::string error;
  bool operator==(const Seen&) const = default;
};

std::vector<Seen> read_frames(std::string_view stream, std::size_t piece) {
  WsFrameReader reader(kMaxMessage);
  std::vector<Seen> seen;
  for (std::size_t at = 0; at < stream.size(); at += piece) {
    const std::string_view bytes = stream.substr(at, piece);
    reader.feed(bytes);
    while (auto event = reader.next()) {
      FUZZ_CHECK(event->payload.size() <= kMaxMessage);
      seen.push_back({event->kind, event->binary, std::string(event->payload), event->close_code,
                      std::string(event->error)});
    }
    // One unfinished frame (header + payload) and one unfinished message, never more.
    FUZZ_CHECK(reader.buffered() <= 2 * kMaxMessage + 10);
  }
  return seen;
}

void check_frames(std::string_view stream, std::size_t piece) {
  const auto whole = read_frames(stream, stream.size() + 1);
  FUZZ_CHECK(read_frames(stream, piece) == whole);
  FUZZ_CHECK(read_frames(stream, 1) == whole);
}

void check_handshake(std::string_view bytes, std::size_t cut) {
  const std::string accept = websocket_accept("dGhlIHNhbXBsZSBub25jZQ==");
  WsUpgradeResponse whole(accept);
  const std::size_t taken_whole = whole.feed(bytes);
  FUZZ_CHECK(taken_whole <= bytes.size());
  WsUpgradeResponse split(accept);
  cut = std::min(cut, bytes.size());
  std::size_t taken = split.feed(bytes.substr(0, cut));
  if (split.state() == WsUpgradeResponse::State::incomplete) taken += split.feed(bytes.substr(cut));
  FUZZ_CHECK(split.state() == whole.state());
  FUZZ_CHECK(taken == taken_whole);
  FUZZ_CHECK(split.error() == whole.error());
  if (whole.state() == WsUpgradeResponse::State::accepted) FUZZ_CHECK(whole.status() == 101);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view rest = evstream::fuzz::as_text(data + 1, size - 1);
  check_frames(rest, std::size_t{data[0]} + 1);
  check_handshake(rest, std::size_t{data[0]} * 7);
  return 0;
}
