#include "core/util/failover.hpp"

#include <algorithm>
#include <cstdio>

#include "core/util/error.hpp"

namespace evstream {

Failover::Failover(std::vector<WsUrl> servers, std::optional<std::int64_t> retry_timeout_us,
                   Backoff backoff)
    : m_servers(std::move(servers)), m_retry_timeout_us(retry_timeout_us), m_backoff(backoff) {
  if (m_servers.empty()) throw Error("no server URL given");  // current() needs one
}

void Failover::opened() {
  m_backoff.reset();
  m_unreachable_since = 0;
}

Failover::Step Failover::failed(std::int64_t now_us) {
  Step step;
  step.left = m_index;
  if (m_unreachable_since == 0) m_unreachable_since = now_us;
  if (m_retry_timeout_us && now_us - m_unreachable_since >= *m_retry_timeout_us) {
    step.give_up = true;
    return step;
  }
  m_index = (m_index + 1) % m_servers.size();
  // Policy: moving on to the next server is immediate, because one node failing says nothing
  // about the others and every pause would be a gap in a tail; but each server is tried at most
  // once between two backoff pauses, so a round of dead servers (or of servers that accept and at
  // once close, as nodes without their log do) is not hammered in a loop. This count is not reset
  // when a connection opens, for that reason. With one server every failure pauses, as before.
  if (++m_tried < m_servers.size()) return step;
  m_tried = 0;
  step.pause = true;
  step.delay_us = m_backoff.next_delay_us();
  if (m_retry_timeout_us) {
    // Never wait past the retry deadline: the attempt after it decides on giving up.
    step.delay_us =
        std::min(step.delay_us, m_unreachable_since + *m_retry_timeout_us - now_us + 1000);
  }
  return step;
}

std::string Failover::describe(const Step& step, const std::string& reason,
                               std::string_view again) const {
  std::string out = m_servers[step.left].to_string() + ": " + reason + "; ";
  out += several() ? "failing over to " + current().to_string() : std::string(again);
  if (step.pause || !several()) {
    char delay[32];
    std::snprintf(delay, sizeof delay, " in %.1fs", static_cast<double>(step.delay_us) / 1e6);
    out += delay;
  }
  return out;
}

}  // namespace evstream
