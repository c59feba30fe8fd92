// NATS JetStream log. The contract is in jetstream.hpp; this file holds the cnats details.
#include "core/store/jetstream.hpp"

#include <nats/nats.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <limits>
#include <thread>

#include "core/store/nats_handles.hpp"
#include "core/util/error.hpp"
#include "core/wire/json_text.hpp"

namespace evstream {

namespace {

constexpr const char* kTopicHeader = "Evstream-Topic";
constexpr const char* kMsgIdHeader = "Nats-Msg-Id";
constexpr std::int64_t kConnectTimeoutMs = 2'000;
constexpr std::int64_t kReconnectWaitMs = 250;
constexpr std::int64_t kApiWaitMs = 5'000;
constexpr std::int64_t kStreamInfoEveryUs = 2'000'000;
constexpr std::int64_t kStalledUs = 5'000'000;  // replica behind and nothing delivered this long

std::int64_t steady_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

using namespace nats_handles;

std::string status_text(natsStatus status) {
  const char* text = natsStatus_GetText(status);
  return text != nullptr ? text : "unknown NATS error";
}

// The detail cnats keeps for the last failure on this thread, else the status text.
std::string last_error(natsStatus status) {
  natsStatus last = NATS_OK;
  const char* text = nats_GetLastError(&last);
  return text != nullptr && *text != '\0' ? text : status_text(status);
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ",") + item;
  return out;
}

}  // namespace

// Members are destroyed bottom-up: the subscription and the context go before the connection
// they hold references to. Every cnats callback gets a Handles* and reaches the log through it.
struct JetStreamLog::Handles {
  explicit Handles(JetStreamLog& owner) : log(owner) {}
  ~Handles();
  Handles(const Handles&) = delete;
  Handles& operator=(const Handles&) = delete;

  JetStreamLog& log;
  std::atomic<bool> stopping{false};  // shutting down: callbacks do nothing
  OptionsPtr options;
  ConnectionPtr connection;
  ContextPtr js;
  SubscriptionPtr subscription;
  // cnats' last word on each: after these no callback of theirs runs again.
  std::mutex mutex;
  std::condition_variable changed;
  bool subscription_done = false;
  bool connection_closed = false;
  std::atomic<int> in_pub_ack{0};  // pub_ack calls under way (they run on a cnats dispatcher)
};

// cnats calls these on its own threads; each only records what happened and wakes the server.
struct JetStreamCallbacks {
  static void pub_ack(jsCtx*, natsMsg* msg, jsPubAck* ack, jsPubAckErr* err, void* closure) {
    auto& handles = *static_cast<JetStreamLog::Handles*>(closure);
    ++handles.in_pub_ack;
    if (handles.stopping.load()) {
      natsMsg_Destroy(msg);
      --handles.in_pub_ack;
      return;
    }
    JetStreamLog& log = handles.log;
    if (ack != nullptr) {
      log.on_pub_ack(msg, ack->Sequence, ack->Duplicate, std::nullopt);
    } else {
      std::string why = err != nullptr && err->ErrText != nullptr ? err->ErrText : "";
      if (why.empty()) why = status_text(err != nullptr ? err->Err : NATS_ERR);
      log.on_pub_ack(msg, 0, false, std::move(why));
    }
    natsMsg_Destroy(msg);
    --handles.in_pub_ack;
  }

  static void message(natsConnection*, natsSubscription*, natsMsg* raw, void* closure) {
    auto& handles = *static_cast<JetStreamLog::Handles*>(closure);
    MsgPtr msg(raw);
    if (handles.stopping.load()) return;
    JetStreamLog& log = handles.log;
    jsMsgMetaData* raw_meta = nullptr;
    if (natsMsg_GetMetaData(&raw_meta, msg.get()) != NATS_OK) return;
    MetaPtr meta(raw_meta);
    const std::uint64_t seq = meta->Sequence.Stream;
    log.m_last_seq.store(std::max(log.m_last_seq.load(), seq + meta->NumPending));
    log.m_delivered.store(seq);
    log.m_last_delivery_us.store(steady_us());

    NewEvent event;
    event.id = static_cast<EventId>(seq);
    event.time_us = meta->Timestamp / 1000;
    const char* topic = nullptr;
    if (natsMsgHeader_Get(msg.get(), kTopicHeader, &topic) == NATS_OK && topic != nullptr &&
        is_valid_topic(topic)) {
      event.topic = topic;
    } else {
      event.topic = std::string(kDefaultTopic);
    }
    const char* data = natsMsg_GetData(msg.get());
    event.data.assign(data != nullptr ? data : "",
                      static_cast<std::size_t>(natsMsg_GetDataLength(msg.get())));
    // Only evstream events are stored: something else published to the subject is skipped (its
    // sequence is then a gap in the ids, which resume handles like any deleted event).
    if (!event.data.starts_with('{') || !check_json(event.data).ok) {
      ++log.m_skipped;
      return;
    }
    if (log.m_sink) log.m_sink(std::move(event));
    log.m_last_delivery_us.store(steady_us());  // a sink waiting for room is not a stall
  }

  static void disconnected(natsConnection*, void* closure) {
    auto& handles = *static_cast<JetStreamLog::Handles*>(closure);
    if (handles.stopping.load()) return;
    JetStreamLog& log = handles.log;
    log.m_connected.store(false);
    if (log.m_notify) log.m_notify();
  }

  static void subscription_complete(void* closure) {
    auto& handles = *static_cast<JetStreamLog::Handles*>(closure);
    std::lock_guard lock(handles.mutex);
    handles.subscription_done = true;
    handles.changed.notify_all();
  }

  static void closed(natsConnection*, void* closure) {
    auto& handles = *static_cast<JetStreamLog::Handles*>(closure);
    std::lock_guard lock(handles.mutex);
    handles.connection_closed = true;
    handles.changed.notify_all();
  }

  static void reconnected(natsConnection*, void* closure) {
    auto& handles = *static_cast<JetStreamLog::Handles*>(closure);
    if (handles.stopping.load()) return;
    JetStreamLog& log = handles.log;
    log.m_connected.store(true);
    ++log.m_reconnects;
    if (log.m_notify) log.m_notify();
  }
};

std::string jetstream_subject(std::string_view stream) {
  return "evstream." + std::string(stream);
}

bool is_valid_stream_name(std::string_view name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

JetStreamLog::JetStreamLog(JetStreamOptions options, std::function<void()> notify)
    : m_options(std::move(options)),
      m_subject(jetstream_subject(m_options.stream)),
      m_notify(std::move(notify)),
      m_handles(std::make_unique<Handles>(*this)) {
  const std::string servers = join(m_options.urls);
  natsOptions* raw_options = nullptr;
  if (natsOptions_Create(&raw_options) != NATS_OK) throw Error("cannot set up the NATS client");
  m_handles->options.reset(raw_options);
  std::vector<const char*> urls;
  for (const auto& url : m_options.urls) urls.push_back(url.c_str());
  natsOptions* o = raw_options;
  natsStatus s = natsOptions_SetServers(o, urls.data(), static_cast<int>(urls.size()));
  if (s != NATS_OK) {
    throw Error("--nats " + servers + ": " + last_error(s) +
                " (use nats://host:port, several separated by commas)");
  }
  natsOptions_SetName(o, "evstream serve");
  natsOptions_SetTimeout(o, kConnectTimeoutMs);
  natsOptions_SetMaxReconnect(o, -1);  // a node outlives NATS restarts; health shows the state
  natsOptions_SetReconnectWait(o, kReconnectWaitMs);
  natsOptions_SetSendAsap(o, true);  // measured: ~0.5 ms of write coalescing otherwise
  natsOptions_SetDisconnectedCB(o, &JetStreamCallbacks::disconnected, m_handles.get());
  natsOptions_SetReconnectedCB(o, &JetStreamCallbacks::reconnected, m_handles.get());
  natsOptions_SetClosedCB(o, &JetStreamCallbacks::closed, m_handles.get());

  natsConnection* raw_connection = nullptr;
  s = natsConnection_Connect(&raw_connection, o);
  if (s != NATS_OK) {
    throw UnavailableError("cannot connect to NATS at " + servers + ": " + last_error(s) +
                           " (start nats-server -js, or check --nats)");
  }
  m_handles->connection.reset(raw_connection);
  m_connected.store(true);

  jsOptions js_options;
  jsOptions_Init(&js_options);
  js_options.Wait = kApiWaitMs;
  js_options.PublishAsync.AckHandler = &JetStreamCallbacks::pub_ack;
  js_options.PublishAsync.AckHandlerClosure = m_handles.get();
  jsCtx* raw_js = nullptr;
  s = natsConnection_JetStream(&raw_js, raw_connection, &js_options);
  if (s != NATS_OK) throw Error("cannot use JetStream at " + servers + ": " + last_error(s));
  m_handles->js.reset(raw_js);
  ensure_stream();
}

JetStreamLog::~JetStreamLog() {
  {
    std::lock_guard lock(m_watch_mutex);
    m_watch_stop = true;
  }
  m_watch_cv.notify_all();
  if (m_watchdog.joinable()) m_watchdog.join();
  // Then m_handles, the last member, goes first and waits for cnats' callbacks.
}

JetStreamLog::Handles::~Handles() {
  // Closing the connection closes the subscriptions without a word to the server (unsubscribing
  // an ordered consumer would ask JetStream to delete it, which waits out a timeout while NATS is
  // away; the server drops an idle ephemeral consumer by itself). Then wait for cnats' last
  // callbacks, so none runs into a destroyed log.
  stopping.store(true);
  if (!connection) return;
  natsConnection_Close(connection.get());
  std::unique_lock lock(mutex);
  changed.wait_for(lock, std::chrono::seconds(10),
                   [&] { return connection_closed && (subscription_done || !subscription); });
  lock.unlock();
  for (int i = 0; i < 10'000 && in_pub_ack.load() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void JetStreamLog::ensure_stream() {
  jsStreamInfo* raw_info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s =
      js_GetStreamInfo(&raw_info, m_handles->js.get(), m_options.stream.c_str(), nullptr, &code);
  StreamInfoPtr info(raw_info);
  const std::string where = "NATS at " + join(m_options.urls);
  if (s == NATS_NO_RESPONDERS || s == NATS_TIMEOUT) {
    throw UnavailableError(where + " does not answer JetStream requests (" + status_text(s) +
                           "): start nats-server with -js");
  }
  if (s == NATS_NOT_FOUND || code == JSStreamNotFoundErr) {
    jsStreamConfig config;
    jsStreamConfig_Init(&config);
    const char* subjects[] = {m_subject.c_str()};
    config.Name = m_options.stream.c_str();
    config.Subjects = subjects;
    config.SubjectsLen = 1;
    config.Storage = js_FileStorage;
    config.Retention = js_LimitsPolicy;
    config.Discard = js_DiscardOld;
    config.Replicas = m_options.replicas;
    config.Duplicates = m_options.dedupe_window_us * 1000;
    if (m_options.retain_age_us) config.MaxAge = *m_options.retain_age_us * 1000;
    if (m_options.retain_events) config.MaxMsgs = *m_options.retain_events;
    raw_info = nullptr;
    s = js_AddStream(&raw_info, m_handles->js.get(), &config, nullptr, &code);
    info.reset(raw_info);
    if (s != NATS_OK) {
      throw Error("cannot create JetStream stream " + m_options.stream + " at " +
                  join(m_options.urls) + ": " + last_error(s) +
                  (m_options.replicas > 1
                       ? " (--nats-replicas " + std::to_string(m_options.replicas) +
                             " needs a cluster of at least that many servers)"
                       : ""));
    }
  } else if (s != NATS_OK) {
    throw Error("cannot read JetStream stream " + m_options.stream + " at " + join(m_options.urls) +
                ": " + last_error(s));
  }
  const jsStreamConfig& config = *info->Config;
  const bool has_subject = std::any_of(config.Subjects, config.Subjects + config.SubjectsLen,
                                       [&](const char* subject) { return m_subject == subject; });
  if (!has_subject) {
    throw Error("JetStream stream " + m_options.stream + " exists but does not take subject " +
                m_subject +
                ", which evstream publishes to: pass another --nats-stream, or add "
                "the subject to the stream");
  }
  if (config.Retention != js_LimitsPolicy) {
    throw Error("JetStream stream " + m_options.stream +
                " exists with interest or work-queue retention, which deletes events once "
                "consumed: evstream needs limits retention; pass another --nats-stream");
  }
  m_replicas = static_cast<int>(config.Replicas);
  m_last_seq.store(info->State.LastSeq);
}

std::pair<std::uint64_t, std::uint64_t> JetStreamLog::stream_bounds() {
  jsStreamInfo* raw_info = nullptr;
  const natsStatus s =
      js_GetStreamInfo(&raw_info, m_handles->js.get(), m_options.stream.c_str(), nullptr, nullptr);
  StreamInfoPtr info(raw_info);
  if (s != NATS_OK) {
    throw UnavailableError("cannot read JetStream stream " + m_options.stream + ": " +
                           last_error(s));
  }
  m_last_seq.store(info->State.LastSeq);
  return {info->State.FirstSeq, info->State.LastSeq};
}

void JetStreamLog::follow(EventId after, Sink sink) {
  m_sink = std::move(sink);
  m_delivered.store(static_cast<std::uint64_t>(after));
  subscribe(static_cast<std::uint64_t>(after));
  m_watchdog = std::thread([this] { watch(); });
}

int JetStreamLog::subscribe(std::uint64_t after) {
  jsSubOptions options;
  jsSubOptions_Init(&options);
  options.Stream = m_options.stream.c_str();
  options.Ordered = true;
  if (after > 0) {
    options.Config.DeliverPolicy = js_DeliverByStartSequence;
    options.Config.OptStartSeq = after + 1;
  } else {
    options.Config.DeliverPolicy = js_DeliverAll;
  }
  natsSubscription* raw = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  const natsStatus s =
      js_Subscribe(&raw, m_handles->js.get(), m_subject.c_str(), &JetStreamCallbacks::message,
                   m_handles.get(), nullptr, &options, &code);
  if (s != NATS_OK) {
    if (!m_watchdog.joinable()) {
      throw Error("cannot follow JetStream stream " + m_options.stream + ": " + last_error(s));
    }
    return static_cast<int>(s);
  }
  {
    std::lock_guard lock(m_handles->mutex);
    m_handles->subscription_done = false;
  }
  m_handles->subscription.reset(raw);
  natsSubscription_SetOnCompleteCB(raw, &JetStreamCallbacks::subscription_complete,
                                   m_handles.get());
  // Messages wait in cnats' queue while the replica catches up; the sink's backpressure bounds
  // how far, and a slow consumer there would drop (and the ordered consumer reset), so no limit.
  natsSubscription_SetPendingLimits(raw, -1, -1);
  m_last_delivery_us.store(steady_us());
  return static_cast<int>(NATS_OK);
}

// The ordered consumer is cnats' to keep alive, but it can stay dead: after its NATS server died
// during a stream leader election it was seen delivering nothing for a minute while the stream
// grew, leaving this node's replica (and the acks that wait for it) behind. Once a second this
// thread reads the stream's last sequence (blocking requests are fine here, not on the service
// thread), and when the replica is behind and nothing arrived for kStalledUs, it replaces the
// subscription, resuming after the last event delivered. It also wakes the server while
// publishes await their outcome, so held acks are looked at again.
void JetStreamLog::watch() {
  std::int64_t last_info = 0;
  for (;;) {
    {
      std::unique_lock lock(m_watch_mutex);
      if (m_watch_cv.wait_for(lock, std::chrono::seconds(1), [this] { return m_watch_stop; })) {
        return;
      }
    }
    const std::int64_t now = steady_us();
    if (m_connected.load() && now - last_info >= kStreamInfoEveryUs) {
      last_info = now;
      jsStreamInfo* raw_info = nullptr;
      jsOptions options;
      jsOptions_Init(&options);
      options.Wait = kApiWaitMs;
      if (js_GetStreamInfo(&raw_info, m_handles->js.get(), m_options.stream.c_str(), &options,
                           nullptr) == NATS_OK) {
        StreamInfoPtr info(raw_info);
        m_last_seq.store(std::max(m_last_seq.load(), info->State.LastSeq));
      }
    }
    const bool behind = m_last_seq.load() > m_delivered.load();
    if (m_connected.load() && behind && now - m_last_delivery_us.load() >= kStalledUs) {
      resubscribe();
    }
    if (m_notify && !idle()) m_notify();
  }
}

void JetStreamLog::resubscribe() {
  Handles& h = *m_handles;
  if (h.subscription) {
    natsSubscription_Unsubscribe(h.subscription.get());
    std::unique_lock lock(h.mutex);
    h.changed.wait_for(lock, std::chrono::seconds(10), [&] { return h.subscription_done; });
    lock.unlock();
    h.subscription.reset();
  }
  ++m_resubscribes;
  if (subscribe(m_delivered.load()) != static_cast<int>(NATS_OK)) {
    m_last_delivery_us.store(steady_us());  // try again after another kStalledUs
  }
}

JetStreamLog::PublishResult JetStreamLog::publish(const NewEvent& event, std::uint64_t tag) {
  std::uint64_t ticket = 0;
  {
    std::lock_guard lock(m_mutex);
    if (m_closed) return PublishResult::closed;
    if (m_pending.size() >= m_options.max_pending) return PublishResult::full;
    ticket = m_next_ticket++;
    m_pending.push_back(Pending{tag, false, {}});
  }
  natsMsg* raw = nullptr;
  natsStatus s = natsMsg_Create(&raw, m_subject.c_str(), nullptr, event.data.data(),
                                static_cast<int>(event.data.size()));
  MsgPtr msg(raw);
  if (s == NATS_OK) s = natsMsgHeader_Set(raw, kTopicHeader, event.topic.c_str());
  if (s == NATS_OK && event.key) s = natsMsgHeader_Set(raw, kMsgIdHeader, event.key->c_str());
  if (s == NATS_OK) {
    std::lock_guard lock(m_mutex);
    m_tickets.emplace(raw, ticket);  // before publishing: the PubAck may beat the call's return
  }
  jsPubOptions options;
  jsPubOptions_Init(&options);
  options.MaxWait = m_options.ack_wait_us / 1000;
  if (s == NATS_OK) s = js_PublishMsgAsync(m_handles->js.get(), &raw, &options);
  if (s == NATS_OK) {
    (void)msg.release();  // cnats owns it now and hands it back to pub_ack
    return PublishResult::ok;
  }
  // Not sent: answer it as failed, in its place in the order.
  {
    std::lock_guard lock(m_mutex);
    m_tickets.erase(msg.get());
    answer(ticket, 0, false, "NATS refused the publish: " + last_error(s));
  }
  return PublishResult::ok;
}

void JetStreamLog::on_pub_ack(const void* msg, std::uint64_t seq, bool duplicate,
                              std::optional<std::string> error) {
  bool releasable = false;
  {
    std::lock_guard lock(m_mutex);
    const auto found = m_tickets.find(const_cast<void*>(msg));
    if (found == m_tickets.end()) return;  // not ours (or already answered)
    const std::uint64_t ticket = found->second;
    m_tickets.erase(found);
    releasable = error || duplicate || seq <= m_visible_up_to;
    answer(ticket, seq, duplicate, std::move(error));
    m_last_seq.store(std::max(m_last_seq.load(), seq));
  }
  // Under load nearly every PubAck beats its event into the replica; waking the server for
  // those would cost a syscall each and release nothing.
  if (releasable && m_notify) m_notify();
}

void JetStreamLog::answer(std::uint64_t ticket, std::uint64_t seq, bool duplicate,
                          std::optional<std::string> error) {
  Pending& pending = m_pending[ticket - m_first_ticket];
  pending.answered = true;
  pending.outcome =
      PublishOutcome{pending.tag, static_cast<EventId>(seq), duplicate, std::move(error)};
}

std::vector<PublishOutcome> JetStreamLog::take_outcomes(std::optional<EventId> replicated) {
  std::vector<PublishOutcome> out;
  std::lock_guard lock(m_mutex);
  m_visible_up_to = replicated ? static_cast<std::uint64_t>(*replicated)
                               : std::numeric_limits<std::uint64_t>::max();
  while (!m_pending.empty() && m_pending.front().answered) {
    const PublishOutcome& outcome = m_pending.front().outcome;
    const bool visible =
        outcome.error || outcome.duplicate || !replicated || outcome.id <= *replicated;
    if (!visible) break;  // later ones wait too: each publisher's replies keep their order
    out.push_back(std::move(m_pending.front().outcome));
    m_pending.pop_front();
    ++m_first_ticket;
  }
  return out;
}

void JetStreamLog::stop_intake() {
  std::lock_guard lock(m_mutex);
  m_closed = true;
}

bool JetStreamLog::idle() const {
  std::lock_guard lock(m_mutex);
  return m_pending.empty();
}

JetStreamStatus JetStreamLog::status() const {
  JetStreamStatus status;
  status.connected = m_connected.load();
  status.stream = m_options.stream;
  status.replicas = m_replicas;
  status.last_seq = m_last_seq.load();
  status.delivered = m_delivered.load();
  status.reconnects = m_reconnects.load();
  status.skipped = m_skipped.load();
  status.resubscribes = m_resubscribes.load();
  std::lock_guard lock(m_mutex);
  status.pending_acks = m_pending.size();
  return status;
}

}  // namespace evstream
