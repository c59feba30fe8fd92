#include "core/client/loadtest_shard.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <string_view>

#include "core/client/raw_ws_client.hpp"
#include "core/client/ws_client.hpp"

namespace evstream {

namespace {

constexpr std::size_t kMaxConnecting = 256;  // adaptive ramp: never more handshakes in flight
constexpr std::int64_t kTickUs = 20'000;
constexpr std::int64_t kCloseWaitUs = 2'000'000;
constexpr std::string_view kTimeMarker = R"("data":{"t":)";

std::int64_t steady_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}

// Where the publish time starts in an event, or npos. The marker is found by its '{' (one memchr
// over the envelope, whose members hold none), with the full search for an envelope that does.
std::size_t time_at(std::string_view text) {
  constexpr std::size_t kBrace = 7;  // `"data":` before the '{'
  const auto brace = text.find('{', 1);
  if (brace != std::string_view::npos && brace >= kBrace &&
      text.substr(brace - kBrace).starts_with(kTimeMarker)) {
    return brace - kBrace + kTimeMarker.size();
  }
  const auto marker = text.find(kTimeMarker);
  return marker == std::string_view::npos ? marker : marker + kTimeMarker.size();
}

}  // namespace

// Receives ws:// through a RawWsConnection: at 200k messages/s lws' WebSocket client (a per-byte
// parser) would cost more CPU than the server being measured, and a load generator must be the
// lightest thing in the room. wss:// keeps lws' WebSocket client: lws 4.1 cannot open a raw
// client connection over TLS (it starts TLS before the socket has connected).
class LoadtestSubscriber final : public RawWsHandler, public WsHandler {
 public:
  LoadtestSubscriber(LoadtestShard& shard, ClientLoop& loop) : m_shard(shard), m_loop(loop) {}
  void start(const WsUrl& url) {
    m_started_us = steady_us();
    if (url.tls) {
      m_tls = std::make_unique<WsConnection>(m_loop, *this);
      m_tls->connect(url);
    } else {
      m_raw = std::make_unique<RawWsConnection>(m_loop, *this);
      m_raw->connect(url);
    }
  }
  void close() {
    if (m_raw) m_raw->close();
    if (m_tls) m_tls->close();
  }
  bool connected() const {
    return m_raw ? m_raw->is_active() : m_tls && (m_tls->is_open() || m_tls->is_connecting());
  }
  bool alive() const { return ready && !lost; }

  void on_message(RawWsConnection& connection, std::string_view text) override {
    if (receive(text)) connection.send_text(kPong);
  }
  void on_read_end(RawWsConnection&) override { m_shard.flush_events(); }
  void on_closed(RawWsConnection&, const std::string&) override { closed(); }

  void on_message(WsConnection& connection, std::string_view text) override {
    if (receive(text)) connection.send(std::string(kPong));
    m_shard.flush_events();  // lws' client hands over one message per callback
  }
  void on_closed(WsConnection&, const std::string&) override { closed(); }

  bool ready = false;
  bool lost = false;
  std::uint64_t received = 0;

 private:
  static constexpr std::string_view kPong = R"({"type":"pong"})";

  // Counts an event, or takes a ping (the first marks the subscriber ready); true: answer pong.
  bool receive(std::string_view text) {
    if (text.starts_with(R"({"type":"event")")) {
      const auto time = time_at(text);
      if (time == std::string_view::npos) return false;
      // from_chars, not strtoll: the view is not NUL-terminated (it lies in lws' read buffer).
      std::int64_t sent_us = 0;
      std::from_chars(text.data() + time, text.data() + text.size(), sent_us);
      ++received;
      m_shard.event_received(sent_us);
      return false;
    }
    if (!text.starts_with(R"({"type":"ping")")) return false;
    if (!ready) {
      ready = true;
      m_shard.subscriber_ready(steady_us() - m_started_us);
    } else {
      m_shard.ping_received();
    }
    return true;
  }

  void closed() {
    m_shard.flush_events();  // before subscriber_lost takes this subscriber's count back
    if (lost || m_shard.closing()) return;  // our own close at the end is not a loss
    lost = true;
    m_shard.subscriber_lost(ready, received);
  }

  LoadtestShard& m_shard;
  ClientLoop& m_loop;
  std::unique_ptr<RawWsConnection> m_raw;  // ws://
  std::unique_ptr<WsConnection> m_tls;     // wss://
  std::int64_t m_started_us = 0;
};

LoadtestShard::LoadtestShard(ClientLoop& loop, LoadtestTally& tally, std::vector<WsUrl> urls,
                             std::size_t first, std::size_t clients, double ramp,
                             std::int64_t start_us, std::function<void()> on_event)
    : m_loop(loop),
      m_tally(tally),
      m_urls(std::move(urls)),
      m_first(first),
      m_clients(clients),
      m_ramp(ramp),
      m_start_us(start_us),
      m_on_event(std::move(on_event)) {}

LoadtestShard::~LoadtestShard() = default;

void LoadtestShard::open_due(std::int64_t now_us) {
  std::size_t allowed = m_clients;
  if (m_ramp > 0) {
    const double elapsed_s = static_cast<double>(now_us - m_start_us) / 1e6;
    allowed = std::min(allowed, static_cast<std::size_t>(m_ramp * elapsed_s) + 1);
  }
  while (m_subscribers.size() < allowed && m_connecting < kMaxConnecting) {
    m_subscribers.push_back(std::make_unique<LoadtestSubscriber>(*this, m_loop));
    ++m_connecting;
    m_subscribers.back()->start(m_urls[(m_first + m_subscribers.size() - 1) % m_urls.size()]);
  }
}

void LoadtestShard::run_until_stopped() {
  std::function<void()> tick = [this, &tick] {
    if (m_stop.load()) return;
    open_due(steady_us());
    if (!all_opened()) m_loop.after(kTickUs, tick);
  };
  tick();
  m_loop.run([this] { return m_stop.load(); });
  close_all();
}

void LoadtestShard::stop() {
  m_stop.store(true);
  m_loop.wake();
}

void LoadtestShard::close_all() {
  m_closing = true;
  for (auto& subscriber : m_subscribers) subscriber->close();
  bool timed_out = false;
  const auto timer = m_loop.after(kCloseWaitUs, [&timed_out] { timed_out = true; });
  m_loop.run([&] {
    return timed_out || std::none_of(m_subscribers.begin(), m_subscribers.end(),
                                     [](const auto& s) { return s->connected(); });
  });
  m_loop.cancel_timer(timer);
}

Histogram LoadtestShard::latency_snapshot() const {
  std::lock_guard lock(m_latency_mutex);
  return m_latency_us;
}

void LoadtestShard::merge_into(Histogram& latency, Histogram& connect, std::uint64_t& pings,
                               std::uint64_t& received_by_alive, std::size_t& alive) const {
  {
    std::lock_guard lock(m_latency_mutex);
    latency.merge(m_latency_us);
  }
  connect.merge(m_connect_us);
  pings += m_pings;
  for (const auto& subscriber : m_subscribers) {
    if (!subscriber->alive()) continue;
    received_by_alive += subscriber->received;
    ++alive;
  }
}

void LoadtestShard::subscriber_ready(std::int64_t connect_us) {
  --m_connecting;
  m_connect_us.record(connect_us);
  ++m_tally.alive;
  ++m_tally.connected;
}

void LoadtestShard::subscriber_lost(bool was_ready, std::uint64_t received) {
  if (was_ready) {
    // received_alive first: a reader between the two sees too many alive, never too few, so
    // the engine cannot think everyone has everything while someone does not.
    m_tally.received_alive -= received;
    --m_tally.alive;
    ++m_tally.disconnected;
  } else {
    --m_connecting;
    ++m_tally.failed;
  }
}

void LoadtestShard::event_received(std::int64_t sent_us) {
  // Every message of one socket read arrived at the same moment: one clock read per read.
  if (m_read_us == 0) m_read_us = steady_us();
  m_pending_latency_us.push_back(m_read_us - sent_us);
}

void LoadtestShard::flush_events() {
  m_read_us = 0;
  if (m_pending_latency_us.empty()) return;
  {
    std::lock_guard lock(m_latency_mutex);
    for (const std::int64_t latency : m_pending_latency_us) m_latency_us.record(latency);
  }
  const std::size_t count = m_pending_latency_us.size();
  m_pending_latency_us.clear();
  m_tally.received += count;
  m_tally.received_alive += count;
  if (m_on_event) m_on_event();
}

}  // namespace evstream
