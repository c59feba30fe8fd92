#pragma once
// `evstream tail`: follows /ws/events, answers pings, and on a lost connection reconnects with
// backoff (failing over along the list of servers, which serve the same ids) and resumes after the
// last id it printed, so the output has no gap and no duplicate.
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "core/util/util.hpp"
#include "core/wire/event.hpp"

namespace evstream {

class ClientLoop;

struct TailOptions {
  std::vector<WsUrl> urls;  // /ws/events endpoints in failover order, without subscription params
  std::vector<std::string> topics;
  std::vector<std::string> where;  // field filters, evaluated by the server (all must hold)
  std::optional<EventId> since_id;
  std::optional<std::int64_t> since_time_us;
  std::optional<std::int64_t> last;  // -n: the last N stored events first
  enum class Output { pretty, json, custom } output = Output::json;
  bool color = false;
  std::string format;  // for Output::custom
  bool fit =
      false;  // pretty and custom lines cut to the width of `out` (a terminal), read per line
  std::optional<std::uint64_t> count;            // exit after this many events
  std::string exec;                              // run once per event, record on its stdin
  std::optional<std::int64_t> retry_timeout_us;  // no server answering this long; none: forever
  std::string token;
  std::FILE* out = stdout;
};

struct TailResult {
  enum class End { count_reached, interrupted, output_closed, unreachable } end = End::interrupted;
  std::uint64_t events = 0;
  std::string reason;
};

TailResult run_tail(const TailOptions& options, ClientLoop& loop);

// The subscription URL path on `server` for a (re)connect: topics plus the resume point.
std::string tail_path(const TailOptions& options, const WsUrl& server,
                      std::optional<EventId> resume_after);

}  // namespace evstream
