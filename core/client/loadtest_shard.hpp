#pragma once
// One slice of loadtest's subscribers on one ClientLoop (and so one thread). The engine runs the
// first shard on its own loop next to the publisher and every other shard on a worker thread;
// what the engine reads while the run goes on is atomic, the rest is merged after the threads end.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "core/util/histogram.hpp"
#include "core/util/util.hpp"

namespace evstream {

class ClientLoop;

// Figures every shard adds to while the run goes on.
struct LoadtestTally {
  std::atomic<std::size_t> connected{0};         // got the first ping
  std::atomic<std::size_t> failed{0};            // never got it
  std::atomic<std::size_t> disconnected{0};      // lost after it
  std::atomic<std::size_t> alive{0};             // connected and not lost
  std::atomic<std::uint64_t> received{0};        // events, by every subscriber
  std::atomic<std::uint64_t> received_alive{0};  // events, by the subscribers alive now
};

class LoadtestSubscriber;

class LoadtestShard {
 public:
  // `clients` subscribers to `urls` (/ws/events URLs, not empty), round-robin: subscriber i of
  // this shard goes to urls[(first + i) % size]. Opened at `ramp` per second from `start_us`
  // (0: all at once); `on_event` (may be empty) runs on this shard's loop thread after each event.
  LoadtestShard(ClientLoop& loop, LoadtestTally& tally, std::vector<WsUrl> urls, std::size_t first,
                std::size_t clients, double ramp, std::int64_t start_us,
                std::function<void()> on_event);
  ~LoadtestShard();
  LoadtestShard(const LoadtestShard&) = delete;
  LoadtestShard& operator=(const LoadtestShard&) = delete;

  // Opens as many subscribers as the ramp allows by `now_us` (bounded handshakes in flight).
  void open_due(std::int64_t now_us);
  bool all_opened() const { return m_subscribers.size() == m_clients; }
  // Runs the loop (on the calling thread) opening subscribers until stop() was called, then
  // closes them with close frames; for worker threads.
  void run_until_stopped();
  void stop();  // thread-safe
  // Close frames for every subscriber and a bounded wait for the server's answers. From here on
  // closes do not count as lost subscribers.
  void close_all();
  bool closing() const { return m_closing; }

  // Latency samples so far (thread-safe; for live progress).
  Histogram latency_snapshot() const;
  // After the shard's loop has stopped for good: the figures the report needs.
  void merge_into(Histogram& latency, Histogram& connect, std::uint64_t& pings,
                  std::uint64_t& received_by_alive, std::size_t& alive) const;

  // From this shard's subscribers, on its loop thread.
  void subscriber_ready(std::int64_t connect_us);
  void subscriber_lost(bool was_ready, std::uint64_t received);
  // An event published at `sent_us` arrived. Its latency waits in a batch that flush_events(),
  // called once per socket read, records: the clock, the lock and the shared counters are
  // touched once per read, not once per event.
  void event_received(std::int64_t sent_us);
  void flush_events();
  void ping_received() { ++m_pings; }

 private:
  ClientLoop& m_loop;
  LoadtestTally& m_tally;
  std::vector<WsUrl> m_urls;
  std::size_t m_first;
  std::size_t m_clients;
  double m_ramp;
  std::int64_t m_start_us;
  std::function<void()> m_on_event;
  std::vector<std::unique_ptr<LoadtestSubscriber>> m_subscribers;
  std::size_t m_connecting = 0;
  bool m_closing = false;
  std::atomic<bool> m_stop{false};
  mutable std::mutex m_latency_mutex;  // the engine reads it for progress
  Histogram m_latency_us;
  Histogram m_connect_us;
  std::uint64_t m_pings = 0;
  std::int64_t m_read_us = 0;  // when the current read's events arrived; 0 between reads
  std::vector<std::int64_t> m_pending_latency_us;
};

}  // namespace evstream
