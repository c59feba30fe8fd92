#pragma once
// `evstream loadtest`: opens N subscribers, publishes timestamped events through /ws/publish at a
// rate, and measures connect success and time, publish -> receive latency, loss, pings, and the
// server's memory and CPU. The engine also drives the benchmarks under bench/.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/client/ws_client.hpp"
#include "core/util/histogram.hpp"
#include "core/util/util.hpp"
#include "core/wire/prom_text.hpp"

namespace evstream {

struct LoadtestOptions;

// The client loop for `clients` of loadtest's subscribers (and the publisher, on the first):
// epoll and 64 KiB reads, so that a subscriber that fell behind catches up in few reads; a loop
// expecting many messages at once wakes at most every 0.1 ms (see loadtest.cpp).
ClientLoopOptions loadtest_loop_options(const LoadtestOptions& options, std::size_t clients);

// Subscribers are spread over this many loops (one per --threads, at most one per subscriber);
// shard k gets loadtest_shard_clients(options, k) of them, shard 0 on the caller's loop beside
// the publisher.
std::size_t loadtest_shard_count(const LoadtestOptions& options);
std::size_t loadtest_shard_clients(const LoadtestOptions& options, std::size_t shard);

struct LoadtestOptions {
  // The servers (ws://host:port; endpoints are added). Subscribers are spread over them round-robin
  // (nodes of one cluster); the publisher and the server figures use the first.
  std::vector<WsUrl> urls;
  // Set: the publisher goes to this server instead (another node of the cluster), so delivery is
  // measured across nodes; the server figures still come from the first of `urls`.
  std::optional<WsUrl> publish_url;
  std::size_t clients = 100;
  std::int64_t duration_us = 10'000'000;
  double rate = 10;         // events per second; 0: as fast as the publish window allows
  std::size_t size = 1024;  // approximate bytes of each event's data
  double ramp = 0;          // connections per second; 0: all at once
  std::string topic;
  // Events carry "camera_id":"cam-<seq mod cameras>" (0: no camera_id).
  std::size_t cameras = 0;
  // Each subscriber subscribes with where=camera_id in <this many of the cameras>, a different
  // set for each while there are enough (0: unfiltered); needs cameras >= it. Expected counts
  // follow the filters.
  std::size_t where_cameras = 0;
  std::size_t window = 1000;    // unacked events in flight when rate is 0
  std::size_t threads = 1;      // subscribers are spread over this many client loops and threads
  std::int64_t server_pid = 0;  // read RSS/CPU from /proc when set, else from /api/health
  std::string token;
  std::string read_token;
  bool progress = false;  // live progress on stderr
  std::int64_t connect_timeout_us = 30'000'000;
  std::int64_t drain_timeout_us = 5'000'000;
};

struct LoadtestReport {
  std::size_t clients = 0;
  std::size_t connected = 0;     // got the first ping
  std::size_t disconnected = 0;  // lost during the run
  Histogram connect_us;
  Histogram latency_us;
  std::uint64_t published = 0;  // acked by the server
  std::uint64_t expected = 0;   // published x subscribers connected throughout
  std::uint64_t received = 0;
  std::uint64_t pings = 0;
  double publish_seconds = 0;
  double delivered_per_s = 0;  // received / publish window
  std::optional<std::int64_t> server_rss_before;
  std::optional<std::int64_t> server_rss_after;
  std::optional<double> server_cpu_percent;
  double self_cpu_percent = 0;
  // The server's own evstream_delivery_seconds over the run (after minus before, cumulative per
  // bucket, seconds): acceptance to each socket write. Empty when /metrics could not be read.
  std::vector<PromBucket> server_delivery;
  std::string error;  // set when the run could not happen (server unreachable)
  std::uint64_t lost() const { return expected > received ? expected - received : 0; }
  // The share of the server's deliveries written within `seconds` (a bucket bound), if known.
  std::optional<double> server_delivered_within(double seconds) const;
};

LoadtestReport run_loadtest(const LoadtestOptions& options, ClientLoop& loop);

// The cameras subscriber `index` filters on with where_cameras = `count` of `cameras`: distinct,
// sorted, and a different set for each index below cameras x (cameras - 1) when count is 2.
std::vector<std::size_t> loadtest_camera_set(std::size_t index, std::size_t cameras,
                                             std::size_t count);

// Service-level objectives: "p99<100ms,loss=0,connected=100%,max<1s,rss_per_client<10KiB".
struct SloCheck {
  std::string name;  // "p99", "loss", "connected", ...
  std::string op;    // "<", "<=", "="
  double limit = 0;  // us for latencies, count/ratio for others
  std::string text;  // as written
};
std::vector<SloCheck> parse_slo(std::string_view text);  // throws evstream::Error on bad input

struct SloResult {
  SloCheck check;
  double actual = 0;
  bool pass = false;
  std::string actual_text;
};
std::vector<SloResult> evaluate_slo(const std::vector<SloCheck>& checks,
                                    const LoadtestReport& report);

std::string report_json(const LoadtestReport& report, const std::vector<SloResult>& slo);
std::string report_table(const LoadtestReport& report, const std::vector<SloResult>& slo);

}  // namespace evstream
