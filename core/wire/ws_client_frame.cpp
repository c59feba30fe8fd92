#include "core/wire/ws_client_frame.hpp"

namespace evstream {

namespace {
constexpr unsigned char kFin = 0x80;
constexpr unsigned char kMasked = 0x80;
constexpr std::size_t kMaxCloseReason = 123;  // 125-byte control payload minus the code
}  // namespace

void append_client_frame(std::string& out, WsOpcode opcode, std::string_view payload,
                         const WsMaskKey& mask) {
  const std::uint64_t n = payload.size();
  out += static_cast<char>(kFin | static_cast<unsigned char>(opcode));
  if (n < 126) {
    out += static_cast<char>(kMasked | n);
  } else if (n <= 0xFFFF) {
    out += static_cast<char>(kMasked | 126);
    out += static_cast<char>((n >> 8) & 0xFF);
    out += static_cast<char>(n & 0xFF);
  } else {
    out += static_cast<char>(kMasked | 127);
    for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>((n >> shift) & 0xFF);
  }
  out.append(reinterpret_cast<const char*>(mask.data()), mask.size());
  const std::size_t start = out.size();
  out += payload;
  for (std::size_t i = 0; i < payload.size(); ++i) {
    out[start + i] = static_cast<char>(static_cast<unsigned char>(out[start + i]) ^ mask[i % 4]);
  }
}

std::string close_payload(std::uint16_t code, std::string_view reason) {
  if (code == 1005) return {};
  std::string payload;
  payload += static_cast<char>(code >> 8);
  payload += static_cast<char>(code & 0xFF);
  payload += reason.substr(0, kMaxCloseReason);
  return payload;
}

}  // namespace evstream
