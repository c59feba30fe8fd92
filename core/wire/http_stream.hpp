#pragma once
// GET /api/events/stream: the messages of /ws/events re-framed for clients that do not speak
// WebSocket. Server-Sent Events for browsers (EventSource reconnects by itself and resumes with
// Last-Event-ID) and NDJSON, one message per line, for curl, shells and log shippers. The messages
// are the same JSON objects a WebSocket subscriber gets, so one encoder serves every transport.
#include <optional>
#include <string>
#include <string_view>

namespace evstream {

enum class StreamFormat { sse, ndjson };

// The format a request asks for: `format=` wins ("sse" or "ndjson"; anything else is nullopt, a
// bad request); without it, SSE when Accept names text/event-stream, else NDJSON.
std::optional<StreamFormat> choose_stream_format(std::optional<std::string_view> format_arg,
                                                 std::string_view accept);

std::string_view stream_content_type(StreamFormat format);

// How long a browser waits before reconnecting an SSE stream (its default is about 3 s).
inline constexpr int kSseRetryMs = 1000;

// Appends one subscriber message (the JSON text of a /ws/events frame) to `out`:
// - NDJSON: the message and a newline;
// - SSE: an event as `id: N` + `data:` (the id is what Last-Event-ID sends back on reconnect);
//   the greeting ping (with connection_id and last_id) as `event: ping` with `retry:`, so
//   `onmessage` sees only records and errors; later pings as `: ping` comments; anything else
//   (errors) as a plain `data:` message without an id.
void append_stream_message(std::string& out, StreamFormat format, std::string_view message);

// The final words of a stream the server ends (slow consumer, shutdown): an NDJSON error line or
// an SSE comment. The client resumes with since= / Last-Event-ID and loses nothing.
void append_stream_end(std::string& out, StreamFormat format, std::string_view reason);

}  // namespace evstream
