#pragma once
// `evstream publish`: streams events to /ws/publish with a window of unacked events, reconnects
// with backoff (failing over along the list of servers) and resends what was not acked under the
// same idempotency keys, so a server restart or a dead cluster node loses nothing and duplicates
// nothing.
#include <cstdint>
#include <string>
#include <vector>

#include "core/util/util.hpp"
#include "core/wire/event.hpp"

namespace evstream {

struct PublishOptions {
  std::vector<WsUrl> urls;                     // /ws/publish endpoints, in failover order
  std::string topic;                           // empty: the event's own or the server default
  std::string key_field;                       // idempotency key taken from this data field
  std::size_t window = 1000;                   // unacked events in flight: hides round trips
  std::int64_t retry_timeout_us = 30'000'000;  // give up (exit 69): no server answered this long
  bool quiet = false;
  std::vector<std::string> events;  // positional events; stdin is read when empty
  int input_fd = 0;
};

struct PublishSummary {
  std::uint64_t acked = 0;
  std::uint64_t duplicates = 0;  // acked as already stored (a resend after a reconnect, or a key)
  std::uint64_t rejected = 0;    // bad lines, locally or by the server
  EventId first_id = 0;
  EventId last_id = 0;
  bool unreachable = false;
  bool interrupted = false;
  std::string unreachable_reason;
  std::string line() const;  // "published N events (ids A-B), R rejected"
};

class ClientLoop;

// Runs until every event is acked or rejected, the server stays unreachable past the retry
// timeout, or `loop.stop()` (Ctrl-C). Bad lines are reported on stderr as they are found.
PublishSummary run_publish(const PublishOptions& options, ClientLoop& loop);

}  // namespace evstream
