// What JetStream itself sustains on this machine, with no evstream in the way: a bare cnats client
// publishes events asynchronously to a file-storage stream configured like serve's (subject,
// Nats-Msg-Id and Evstream-Topic headers, 2 min duplicate window), optionally with an ordered
// consumer on the same stream, as every serve node runs to feed its replica. The acked rate of
// `serve --nats` cannot exceed this figure; cluster_bench.sh prints both side by side.
// Usage: jetstream_ceiling --url nats://127.0.0.1:4222 [--events N] [--size B] [--consume 0|1]
//                          [--send-asap 0|1] [--stream NAME]
// Prints one JSON line: acked/s, consumed/s and this client's CPU.
#include <nats/nats.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "core/store/nats_handles.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string url;
  std::string stream = "CEILING";
  long events = 200'000;
  int size = 256;
  bool consume = true;
  bool send_asap = true;
};

struct Counters {
  std::atomic<long> acked{0};
  std::atomic<long> failed{0};
  std::atomic<long> consumed{0};
};

using namespace evstream::nats_handles;

void check(natsStatus status, const char* what) {
  if (status != NATS_OK) {
    throw std::runtime_error(std::string(what) + ": " + natsStatus_GetText(status));
  }
}

void on_ack(jsCtx*, natsMsg* msg, jsPubAck* ack, jsPubAckErr*, void* closure) {
  auto& counters = *static_cast<Counters*>(closure);
  ++(ack != nullptr ? counters.acked : counters.failed);
  natsMsg_Destroy(msg);
}

// Reads the metadata like serve's consumer does (the sequence and the time come from it).
void on_message(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  jsMsgMetaData* meta = nullptr;
  if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) jsMsgMetaData_Destroy(meta);
  const char* topic = nullptr;
  natsMsgHeader_Get(msg, "Evstream-Topic", &topic);
  ++static_cast<Counters*>(closure)->consumed;
  natsMsg_Destroy(msg);
}

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

Options parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const char* value = argv[i + 1];
    if (flag == "--url")
      options.url = value;
    else if (flag == "--stream")
      options.stream = value;
    else if (flag == "--events")
      options.events = std::atol(value);
    else if (flag == "--size")
      options.size = std::atoi(value);
    else if (flag == "--consume")
      options.consume = std::atoi(value) != 0;
    else if (flag == "--send-asap")
      options.send_asap = std::atoi(value) != 0;
    else
      throw std::runtime_error("unknown flag " + flag);
  }
  if (options.url.empty() || options.events <= 0 || options.size < 2) {
    throw std::runtime_error(
        "usage: jetstream_ceiling --url nats://HOST:PORT [--events N] "
        "[--size B] [--consume 0|1] [--send-asap 0|1] [--stream NAME]");
  }
  return options;
}

void run(const Options& options) {
  Counters counters;
  natsOptions* raw_options = nullptr;
  check(natsOptions_Create(&raw_options), "options");
  OptionsPtr nats_options(raw_options);
  check(natsOptions_SetURL(raw_options, options.url.c_str()), "url");
  check(natsOptions_SetSendAsap(raw_options, options.send_asap), "send asap");
  natsConnection* raw_connection = nullptr;
  check(natsConnection_Connect(&raw_connection, raw_options), "connect");
  ConnectionPtr connection(raw_connection);

  jsOptions js_options;
  jsOptions_Init(&js_options);
  js_options.PublishAsync.AckHandler = &on_ack;
  js_options.PublishAsync.AckHandlerClosure = &counters;
  js_options.PublishAsync.MaxPending = 65536;
  jsCtx* raw_js = nullptr;
  check(natsConnection_JetStream(&raw_js, raw_connection, &js_options), "jetstream");
  ContextPtr js(raw_js);

  const std::string subject = "evstream." + options.stream;
  const char* subjects[] = {subject.c_str()};
  jsStreamConfig config;
  jsStreamConfig_Init(&config);
  config.Name = options.stream.c_str();
  config.Subjects = subjects;
  config.SubjectsLen = 1;
  config.Storage = js_FileStorage;
  config.Duplicates = 120LL * 1'000'000'000LL;
  check(js_AddStream(nullptr, raw_js, &config, nullptr, nullptr), "add stream");

  SubscriptionPtr subscription;
  if (options.consume) {
    jsSubOptions sub_options;
    jsSubOptions_Init(&sub_options);
    sub_options.Stream = options.stream.c_str();
    sub_options.Ordered = true;
    sub_options.Config.DeliverPolicy = js_DeliverNew;
    natsSubscription* raw_sub = nullptr;
    check(js_Subscribe(&raw_sub, raw_js, subject.c_str(), &on_message, &counters, nullptr,
                       &sub_options, nullptr),
          "subscribe");
    subscription.reset(raw_sub);
    natsSubscription_SetPendingLimits(raw_sub, -1, -1);
  }

  std::string data(static_cast<std::size_t>(options.size), 'x');
  data.front() = '{';
  data.back() = '}';
  jsPubOptions pub_options;
  jsPubOptions_Init(&pub_options);
  pub_options.MaxWait = 5'000;
  const double cpu_start = cpu_seconds();
  const auto start = Clock::now();
  for (long i = 0; i < options.events; ++i) {
    natsMsg* msg = nullptr;
    check(natsMsg_Create(&msg, subject.c_str(), nullptr, data.data(), options.size), "message");
    const std::string key = "ceiling-" + std::to_string(i);
    natsMsgHeader_Set(msg, "Evstream-Topic", "events");
    natsMsgHeader_Set(msg, "Nats-Msg-Id", key.c_str());
    if (js_PublishMsgAsync(raw_js, &msg, &pub_options) != NATS_OK) {
      natsMsg_Destroy(msg);
      ++counters.failed;
    }
  }
  jsPubOptions complete;
  jsPubOptions_Init(&complete);
  complete.MaxWait = 60'000;
  js_PublishAsyncComplete(raw_js, &complete);
  const double acked_s = std::chrono::duration<double>(Clock::now() - start).count();
  for (int i = 0; options.consume && i < 30'000 && counters.consumed.load() < counters.acked.load();
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // bounded: 30 s
  }
  const double consumed_s = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu = cpu_seconds() - cpu_start;
  js_DeleteStream(raw_js, options.stream.c_str(), nullptr, nullptr);
  std::printf(
      "{\"bench\": \"jetstream_ceiling\", \"size\": %d, \"consume\": %s, \"send_asap\": %s, "
      "\"events\": %ld, \"acked\": %ld, \"failed\": %ld, \"acked_per_s\": %.0f, "
      "\"consumed\": %ld, \"consumed_per_s\": %.0f, \"client_cpu_percent\": %.0f}\n",
      options.size, options.consume ? "true" : "false", options.send_asap ? "true" : "false",
      options.events, counters.acked.load(), counters.failed.load(),
      static_cast<double>(counters.acked.load()) / acked_s, counters.consumed.load(),
      options.consume ? static_cast<double>(counters.consumed.load()) / consumed_s : 0.0,
      100.0 * cpu / consumed_s);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    run(parse(argc, argv));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "jetstream_ceiling: %s\n", e.what());
    return 1;
  }
}
