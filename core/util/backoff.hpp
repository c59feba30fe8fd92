#pragma once
// Reconnect delays: exponential from `initial` to `max`, with +-20% jitter so a fleet of clients
// does not reconnect in lockstep after a server restart.
#include <cstdint>
#include <random>

namespace evstream {

class Backoff {
 public:
  Backoff(std::int64_t initial_us = 100'000, std::int64_t max_us = 5'000'000)
      : m_initial(initial_us), m_max(max_us), m_next(initial_us), m_rng(std::random_device{}()) {}
  std::int64_t next_delay_us() {
    const std::int64_t base = m_next;
    m_next = std::min(m_next * 2, m_max);
    std::uniform_real_distribution<double> jitter(0.8, 1.2);
    return static_cast<std::int64_t>(static_cast<double>(base) * jitter(m_rng));
  }
  void reset() { m_next = m_initial; }

 private:
  std::int64_t m_initial;
  std::int64_t m_max;
  std::int64_t m_next;
  std::mt19937_64 m_rng;
};

}  // namespace evstream
