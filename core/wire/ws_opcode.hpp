#pragma once
// WebSocket frame opcodes (RFC 6455 §5.2), shared by the raw client's frame reader and writer.
#include <cstdint>

namespace evstream {

enum class WsOpcode : std::uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xA,
};

}  // namespace evstream
