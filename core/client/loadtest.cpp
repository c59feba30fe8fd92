#include "core/client/loadtest.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "core/client/loadtest_shard.hpp"
#include "core/client/ws_client.hpp"
#include "core/util/error.hpp"
#include "core/wire/json_text.hpp"
#include "core/wire/protocol.hpp"

namespace evstream {

namespace {

std::int64_t steady_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}

double self_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

struct ProcSample {
  std::int64_t rss = 0;
  double cpu_seconds = 0;
};

std::optional<ProcSample> read_proc(std::int64_t pid) {
  const std::string base = "/proc/" + std::to_string(pid);
  std::ifstream statm(base + "/statm");
  std::int64_t size = 0;
  std::int64_t resident = 0;
  if (!(statm >> size >> resident)) return std::nullopt;
  std::ifstream stat(base + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto paren = text.rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream fields(text.substr(paren + 2));
  std::string skip;
  for (int i = 0; i < 11; ++i) fields >> skip;  // fields 3..13
  double utime = 0;
  double stime = 0;
  fields >> utime >> stime;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  return ProcSample{resident * sysconf(_SC_PAGESIZE), (utime + stime) / ticks};
}

std::string with_token(std::string path, const std::string& token) {
  if (token.empty()) return path;
  return path + (path.find('?') == std::string::npos ? "?token=" : "&token=") + url_encode(token);
}

class Engine final : public WsHandler {
 public:
  Engine(const LoadtestOptions& options, ClientLoop& loop)
      : m_options(options), m_loop(loop), m_publisher(loop, *this) {
    // An event's time is taken as it is built: it must reach the socket then, not after the loop's
    // next look at its sockets.
    m_publisher.set_write_at_once(true);
    m_report.clients = options.clients;
    if (options.where_cameras > 0) {
      if (options.where_cameras > options.cameras) {
        throw Error("where_cameras needs at least that many cameras");  // cmd/ checks it first
      }
      m_filters_per_camera.assign(options.cameras, 0);
      for (std::size_t j = 0; j < options.clients; ++j) {
        for (const auto c : loadtest_camera_set(j, options.cameras, options.where_cameras)) {
          ++m_filters_per_camera[c];
        }
      }
    }
    std::string pad(options.size > 48 ? options.size - 48 : 0, 'x');
    m_pad = std::move(pad);
  }
  ~Engine() { stop_workers(); }
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  LoadtestReport run() {
    sample_server(m_report.server_rss_before, m_before);
    if (!m_report.error.empty()) return m_report;
    const auto delivery_before = server_delivery();
    const double cpu_start = self_cpu_seconds();
    const std::int64_t wall_start = steady_us();
    m_phase_started = steady_us();
    start_shards();
    tick();
    m_loop.run([this] { return m_phase == Phase::done; });
    m_report.self_cpu_percent = 100.0 * (self_cpu_seconds() - cpu_start) /
                                (static_cast<double>(steady_us() - wall_start) / 1e6);
    ProcSample after;
    sample_server(m_report.server_rss_after, after);  // before closing: connections still count
    subtract_delivery(server_delivery(), delivery_before);
    if (m_options.server_pid != 0 && m_report.server_rss_after && m_report.server_rss_before) {
      m_report.server_cpu_percent = 100.0 * (after.cpu_seconds - m_before.cpu_seconds) /
                                    (static_cast<double>(steady_us() - wall_start) / 1e6);
    }
    close_all();
    finish_counts();
    return m_report;
  }

  void on_message(WsConnection&, std::string_view text) override {
    const auto message = decode_server_message(text);
    if (!message) return;
    if (message->type == ServerMessage::Type::ack) {
      ++m_report.published;
      --m_in_flight;
      if (m_options.rate == 0 && m_phase == Phase::publishing) send_due();
    } else if (message->type == ServerMessage::Type::error) {
      --m_in_flight;
      if (m_report.error.empty()) m_report.error = "server rejected an event: " + message->message;
    }
  }
  void on_closed(WsConnection&, const std::string& reason) override {
    if (m_phase == Phase::publishing || m_phase == Phase::draining) {
      m_report.error = "publisher connection lost: " + reason;
      m_phase = Phase::done;
    } else if (m_phase == Phase::connecting) {
      m_report.error = "cannot publish: " + reason;
      m_phase = Phase::done;
    }
  }

 private:
  enum class Phase { connecting, publishing, draining, done };

  // Shard 0 lives on this loop beside the publisher; each further one gets a loop and a thread.
  void start_shards() {
    std::string path = "/ws/events";
    if (!m_options.topic.empty()) path += "?topic=" + url_encode(m_options.topic);
    std::vector<WsUrl> urls = m_options.urls;
    for (WsUrl& url : urls) url.path = with_token(path, m_options.read_token);
    if (m_options.where_cameras > 0) urls = filtered_urls(path);
    const std::size_t count = loadtest_shard_count(m_options);
    const double ramp = m_options.ramp / static_cast<double>(count);
    std::size_t first = 0;  // global index of the shard's first subscriber: one round-robin
    for (std::size_t k = 0; k < count; ++k) {
      const std::size_t clients = loadtest_shard_clients(m_options, k);
      ClientLoop* loop = &m_loop;
      std::function<void()> on_event;
      if (k == 0) {
        on_event = [this] {
          if (m_options.rate == 0 && m_phase == Phase::publishing) send_due();
        };
      } else {
        m_worker_loops.push_back(
            std::make_unique<ClientLoop>(loadtest_loop_options(m_options, clients)));
        loop = m_worker_loops.back().get();
      }
      m_shards.push_back(std::make_unique<LoadtestShard>(*loop, m_tally, urls, first, clients, ramp,
                                                         m_phase_started, std::move(on_event)));
      first += clients;
    }
    for (std::size_t k = 1; k < m_shards.size(); ++k) {
      m_workers.emplace_back([shard = m_shards[k].get()] { shard->run_until_stopped(); });
    }
  }

  // One URL per subscriber (subscriber j takes urls[j]), each with its own camera filter, the
  // servers still taken round-robin.
  std::vector<WsUrl> filtered_urls(const std::string& path) const {
    std::vector<WsUrl> urls;
    for (std::size_t j = 0; j < m_options.clients; ++j) {
      std::string list;
      for (const auto c : loadtest_camera_set(j, m_options.cameras, m_options.where_cameras)) {
        list += (list.empty() ? "cam-" : ",cam-") + std::to_string(c);
      }
      WsUrl url = m_options.urls[j % m_options.urls.size()];
      url.path = with_token(path + (path.find('?') == std::string::npos ? "?" : "&") +
                                "where=" + url_encode("camera_id in " + list),
                            m_options.read_token);
      urls.push_back(std::move(url));
    }
    return urls;
  }

  // Events every subscriber together should get once `published` were acked: all of them for
  // each, or with camera filters the ones of its cameras (cameras are assigned round-robin).
  std::uint64_t expected_for_all(std::uint64_t published) const {
    if (m_options.where_cameras == 0) return published * m_options.clients;
    const std::uint64_t cameras = m_options.cameras;
    std::uint64_t expected = 0;
    for (std::uint64_t c = 0; c < cameras; ++c) {
      expected += m_filters_per_camera[c] * (published / cameras + (c < published % cameras));
    }
    return expected;
  }
  // The share of that for the subscribers alive now (exact when none was lost).
  std::uint64_t expected_for_alive(std::uint64_t published, std::size_t alive) const {
    return expected_for_all(published) * alive / std::max<std::size_t>(m_options.clients, 1);
  }

  // Workers close their subscribers (close frames, bounded wait) and end; idempotent.
  void stop_workers() {
    for (std::size_t k = 1; k < m_shards.size(); ++k) m_shards[k]->stop();
    for (auto& worker : m_workers) worker.join();
    m_workers.clear();
  }

  void close_all() {
    m_phase = Phase::done;
    m_publisher.close();
    m_shards[0]->close_all();  // its bounded wait also lets the publisher's close go out
    stop_workers();
  }

  void sample_server(std::optional<std::int64_t>& rss, ProcSample& sample) {
    if (m_options.server_pid != 0) {
      if (auto proc = read_proc(m_options.server_pid)) {
        sample = *proc;
        rss = proc->rss;
      }
      return;
    }
    const WsUrl& base = m_options.urls.front();
    const auto response =
        http_get(m_loop, base, with_token("/api/health", m_options.read_token), 5'000'000);
    if (response.status == 0) {
      if (!rss) m_report.error = "cannot reach " + base.to_string() + ": " + response.error;
      return;
    }
    const std::string health = minify_json(response.body);  // members are views into it
    for (const auto& member : top_level_members(health)) {
      if (member.key == "rss_bytes") rss = std::atoll(std::string(member.value).c_str());
    }
  }

  // The server's evstream_delivery_seconds buckets now; empty when /metrics cannot be read.
  std::vector<PromBucket> server_delivery() {
    const auto response = http_get(m_loop, m_options.urls.front(),
                                   with_token("/metrics", m_options.read_token), 5'000'000);
    if (response.status != 200) return {};
    return read_histogram_buckets(response.body, "evstream_delivery_seconds");
  }

  void subtract_delivery(std::vector<PromBucket> after, const std::vector<PromBucket>& before) {
    if (after.empty() || after.size() != before.size()) return;
    for (std::size_t i = 0; i < after.size(); ++i) after[i].count -= before[i].count;
    m_report.server_delivery = std::move(after);
  }

  void tick() {
    const std::int64_t now = steady_us();
    if (m_options.progress) progress(now);
    switch (m_phase) {
      case Phase::connecting:
        m_shards[0]->open_due(now);
        if (m_tally.connected + m_tally.failed >= m_options.clients ||
            now - m_phase_started > m_options.connect_timeout_us) {
          start_publishing(now);
        }
        break;
      case Phase::publishing:
        if (now - m_phase_started >= m_options.duration_us) {
          m_phase = Phase::draining;
          m_publish_end = now;
          m_drain_started = now;
        } else {
          send_due();
        }
        break;
      case Phase::draining:
        if ((m_in_flight == 0 && received_all()) ||
            now - m_drain_started > m_options.drain_timeout_us) {
          m_phase = Phase::done;
          return;
        }
        break;
      case Phase::done:
        return;
    }
    m_loop.after(tick_us(), [this] { tick(); });
  }

  // lws polls with millisecond timeouts rounded down, so a timer spins for its last
  // millisecond: keep ticks coarse (pacing catches up from elapsed time anyway).
  std::int64_t tick_us() const {
    if (m_phase != Phase::publishing || m_options.rate <= 0) return 20'000;
    return std::clamp<std::int64_t>(static_cast<std::int64_t>(1e6 / m_options.rate), 2'000, 20'000);
  }

  void start_publishing(std::int64_t now) {
    m_phase = Phase::publishing;
    m_phase_started = now;
    m_publish_start = now;
    m_ready_at_start = m_tally.connected;
    WsUrl url = m_options.publish_url.value_or(m_options.urls.front());
    url.path = with_token("/ws/publish", m_options.token);
    m_publisher.connect(url);
  }

  void send_due() {
    if (!m_publisher.is_open()) return;
    std::uint64_t due = 0;
    if (m_options.rate > 0) {
      const double elapsed = static_cast<double>(steady_us() - m_publish_start) / 1e6;
      const auto target = static_cast<std::uint64_t>(m_options.rate * elapsed) + 1;
      due = target > m_sent ? target - m_sent : 0;
    } else {
      // As fast as delivery goes: at most `window` events ahead of the average subscriber, so
      // the run measures sustained throughput instead of filling socket buffers.
      const std::uint64_t ahead = m_sent - std::min(m_sent, average_received());
      const std::uint64_t limit = std::max<std::uint64_t>(m_in_flight, ahead);
      due = m_options.window > limit ? m_options.window - limit : 0;
    }
    for (std::uint64_t i = 0; i < due; ++i) send_one();
  }

  void send_one() {
    std::string data =
        R"({"t":)" + std::to_string(steady_us()) + R"(,"seq":)" + std::to_string(m_sent);
    if (m_options.cameras > 0) {
      data += R"(,"camera_id":"cam-)" + std::to_string(m_sent % m_options.cameras) + "\"";
    }
    data += R"(,"pad":")" + m_pad + "\"}";
    std::string frame = R"({"type":"event",)";
    if (!m_options.topic.empty()) frame += R"("topic":)" + json_quote(m_options.topic) + ",";
    frame += R"("data":)" + data + "}";
    m_publisher.send(std::move(frame));
    ++m_sent;
    ++m_in_flight;
  }

  std::uint64_t average_received() const {
    return m_ready_at_start == 0 ? m_sent : m_tally.received / m_ready_at_start;
  }

  bool received_all() const {
    // received_alive before alive (see LoadtestShard::subscriber_lost).
    const std::uint64_t received = m_tally.received_alive;
    return received >= expected_for_alive(m_report.published, m_tally.alive);
  }

  void finish_counts() {
    const double seconds =
        static_cast<double>((m_publish_end != 0 ? m_publish_end : steady_us()) - m_publish_start) /
        1e6;
    m_report.publish_seconds = seconds;
    m_report.connected = m_tally.connected;
    m_report.disconnected = m_tally.disconnected;
    std::size_t alive = 0;
    for (const auto& shard : m_shards) {
      shard->merge_into(m_report.latency_us, m_report.connect_us, m_report.pings, m_report.received,
                        alive);
    }
    m_report.expected = expected_for_alive(m_report.published, alive);
    if (seconds > 0) m_report.delivered_per_s = static_cast<double>(m_report.received) / seconds;
  }

  void progress(std::int64_t now) {
    if (now - m_last_progress < 1'000'000) return;
    m_last_progress = now;
    Histogram latency;
    for (const auto& shard : m_shards) latency.merge(shard->latency_snapshot());
    std::fprintf(stderr, "\rconnected %zu/%zu  sent %llu  acked %llu  received %llu  p99 %.2fms   ",
                 m_tally.connected.load(), m_options.clients,
                 static_cast<unsigned long long>(m_sent),
                 static_cast<unsigned long long>(m_report.published),
                 static_cast<unsigned long long>(m_tally.received.load()),
                 static_cast<double>(latency.percentile(0.99)) / 1000.0);
    if (m_phase == Phase::done) std::fprintf(stderr, "\n");
  }

  const LoadtestOptions& m_options;
  ClientLoop& m_loop;
  WsConnection m_publisher;
  LoadtestTally m_tally;
  std::vector<std::unique_ptr<ClientLoop>> m_worker_loops;
  std::vector<std::unique_ptr<LoadtestShard>> m_shards;  // after the loops: destroyed first
  std::vector<std::thread> m_workers;
  std::string m_pad;
  std::vector<std::uint64_t> m_filters_per_camera;  // subscribers whose filter holds camera c
  LoadtestReport m_report;
  ProcSample m_before;
  Phase m_phase = Phase::connecting;
  std::int64_t m_phase_started = 0;
  std::int64_t m_publish_start = 0;
  std::int64_t m_publish_end = 0;
  std::int64_t m_drain_started = 0;
  std::int64_t m_last_progress = 0;
  std::size_t m_ready_at_start = 0;
  std::uint64_t m_sent = 0;
  std::uint64_t m_in_flight = 0;
};

}  // namespace

std::vector<std::size_t> loadtest_camera_set(std::size_t index, std::size_t cameras,
                                             std::size_t count) {
  std::vector<std::size_t> set;
  if (cameras == 0) return set;
  count = std::min(count, cameras);
  // The first camera walks all cameras, the stride changes with every round of them.
  const std::size_t stride = cameras > 1 ? 1 + (index / cameras) % (cameras - 1) : 1;
  for (std::size_t m = 0; set.size() < count; ++m) {
    std::size_t c = (index % cameras + m * stride) % cameras;
    // The stride came back to a taken camera: the next free one (there is one: count <= cameras).
    while (std::find(set.begin(), set.end(), c) != set.end()) c = (c + 1) % cameras;
    set.push_back(c);
  }
  std::sort(set.begin(), set.end());
  return set;
}

std::size_t loadtest_shard_count(const LoadtestOptions& options) {
  return std::clamp<std::size_t>(options.threads, 1, std::max<std::size_t>(options.clients, 1));
}

std::size_t loadtest_shard_clients(const LoadtestOptions& options, std::size_t shard) {
  const std::size_t count = loadtest_shard_count(options);
  return options.clients / count + (shard < options.clients % count);
}

ClientLoopOptions loadtest_loop_options(const LoadtestOptions& options, std::size_t clients) {
  // 100 us between looks at the sockets: a busy loop then wakes at most 10,000 times a second
  // instead of once for every few sockets (a sixth less CPU at 1,000 subscribers x 200 events/s),
  // and a measured latency grows by 0.1 ms at most. A loop expecting less than a message per
  // 50 us gains nothing from that, and would add the wait to every latency it measures.
  constexpr double kCollectFromPerSecond = 20'000;
  const double expected_per_second = options.rate * static_cast<double>(clients);
  const bool busy = options.rate <= 0 || expected_per_second >= kCollectFromPerSecond;
  return ClientLoopOptions{.max_connections = clients + 8,
                           .read_size = 64 * 1024,
                           .epoll = true,
                           .collect_us = busy ? 100 : 0};
}

LoadtestReport run_loadtest(const LoadtestOptions& options, ClientLoop& loop) {
  Engine engine(options, loop);
  return engine.run();
}

}  // namespace evstream
