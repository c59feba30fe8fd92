// SSE and NDJSON framing of subscriber messages; the contract is in http_stream.hpp.
#include "core/wire/http_stream.hpp"

#include "core/wire/protocol.hpp"

namespace evstream {

namespace {

constexpr std::string_view kEventPrefix = R"({"type":"event","id":)";
constexpr std::string_view kPingPrefix = R"({"type":"ping")";

// The messages are compact JSON, but a raw line break (whitespace between tokens; JSON strings
// cannot hold one) would end an NDJSON line or an SSE field early: outside strings it is only
// whitespace, so a space keeps the meaning.
void append_one_line(std::string& out, std::string_view message) {
  for (const char c : message) out += (c == '\n' || c == '\r') ? ' ' : c;
}

}  // namespace

std::optional<StreamFormat> choose_stream_format(std::optional<std::string_view> format_arg,
                                                 std::string_view accept) {
  if (format_arg) {
    if (*format_arg == "sse") return StreamFormat::sse;
    if (*format_arg == "ndjson") return StreamFormat::ndjson;
    return std::nullopt;
  }
  return accept.find("text/event-stream") != std::string_view::npos ? StreamFormat::sse
                                                                    : StreamFormat::ndjson;
}

std::string_view stream_content_type(StreamFormat format) {
  return format == StreamFormat::sse ? "text/event-stream; charset=utf-8" : "application/x-ndjson";
}

void append_stream_message(std::string& out, StreamFormat format, std::string_view message) {
  if (format == StreamFormat::ndjson) {
    append_one_line(out, message);
    out += '\n';
    return;
  }
  if (message.starts_with(kEventPrefix)) {
    const std::string_view rest = message.substr(kEventPrefix.size());
    out += "id: ";
    out += rest.substr(0, rest.find_first_not_of("0123456789"));
    out += '\n';
  } else if (message.starts_with(kPingPrefix)) {
    if (message.find(R"("connection_id":)") == std::string_view::npos) {
      out += ": ping\n\n";
      return;
    }
    out += "retry: " + std::to_string(kSseRetryMs) + "\nevent: ping\n";
  }
  out += "data: ";
  append_one_line(out, message);
  out += "\n\n";
}

void append_stream_end(std::string& out, StreamFormat format, std::string_view reason) {
  if (format == StreamFormat::ndjson) {
    out += encode_error(reason);
    out += '\n';
  } else {
    out += ": ";
    append_one_line(out, reason);
    out += "\n\n";
  }
}

}  // namespace evstream
