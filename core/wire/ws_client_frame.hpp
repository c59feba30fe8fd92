#pragma once
// The frames a WebSocket client sends (RFC 6455 §5.3): every one masked with a fresh key, which the
// caller draws from a strong random source and passes in (so this stays pure and testable). Used
// by loadtest's raw subscribers for their pongs and close frames.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/wire/ws_opcode.hpp"

namespace evstream {

using WsMaskKey = std::array<unsigned char, 4>;

// Appends one final frame of `opcode` carrying `payload`, masked with `mask`, to `out`.
void append_client_frame(std::string& out, WsOpcode opcode, std::string_view payload,
                         const WsMaskKey& mask);

// A close frame's payload: `code` in network byte order, then `reason` (at most 123 bytes are
// kept, the limit of a control frame). Code 1005 ("none given") is never sent: it gives "".
std::string close_payload(std::uint16_t code, std::string_view reason = {});

}  // namespace evstream
