#pragma once
// Which server a client connects to next, and when: the servers of its --url list in order,
// wrapping around. Used by publish and tail (and so replay --to) on the loop thread; pure state,
// no sockets. With one server it is the plain reconnect-with-backoff every client had before.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/util/backoff.hpp"
#include "core/util/util.hpp"

namespace evstream {

class Failover {
 public:
  // `servers` must not be empty (evstream::Error otherwise). `retry_timeout_us`: give up once no
  // server has answered for this long (none: never give up).
  Failover(std::vector<WsUrl> servers, std::optional<std::int64_t> retry_timeout_us,
           Backoff backoff = {});

  const WsUrl& current() const { return m_servers[m_index]; }
  const std::vector<WsUrl>& servers() const { return m_servers; }
  bool several() const { return m_servers.size() > 1; }

  // A connection to current() opened: the backoff starts small again and the unreachable clock
  // stops (any server answering counts).
  void opened();

  struct Step {
    bool give_up = false;       // no server answered for retry_timeout: end the run (exit 69)
    std::int64_t delay_us = 0;  // wait this long, then connect to current()
    std::size_t left = 0;       // index of the server that failed
    bool pause = false;         // a full round failed: delay_us is the backoff
  };
  // The attempt on current() failed or its connection was lost, at `now_us` (unix us): moves on to
  // the next server and says when to try it.
  Step failed(std::int64_t now_us);

  // The stderr note for a step, after "<client>: ": "A: reason; failing over to B in 0.1s" with
  // several servers, "A: reason; <again> in 0.1s" (again = "reconnecting") with one.
  std::string describe(const Step& step, const std::string& reason, std::string_view again) const;

 private:
  std::vector<WsUrl> m_servers;
  std::size_t m_index = 0;
  std::size_t m_tried = 0;  // servers that failed since the last pause
  std::optional<std::int64_t> m_retry_timeout_us;
  std::int64_t m_unreachable_since = 0;  // 0: a server answered since the last failure
  Backoff m_backoff;
};

}  // namespace evstream
