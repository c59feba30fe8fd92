// evstream serve: broadcast + persist + REST + dashboard on one port.
#include <algorithm>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cmd/commands.hpp"
#include "core/server/server.hpp"
#include "core/util/error.hpp"
#include "core/util/log.hpp"
#include "core/util/signals.hpp"
#include "core/util/util.hpp"

namespace evstream::cmd {

namespace {

// Flags as typed; converted and validated in run_serve so errors name the flag.
struct ServeFlags {
  ServerOptions server;
  std::string ping_interval = "30s";
  std::string client_queue_bytes = "1MiB";
  std::string max_message_bytes = "1MiB";
  std::string durability = "normal";
  std::string retain_age;
  std::int64_t retain_events = 0;
  std::string log_format = "text";
  std::string log_level = "info";
  std::vector<std::string> nats;  // each may hold several URLs separated by commas
  std::string nats_stream = "EVSTREAM";
  int nats_replicas = 1;
  std::string nats_dedupe_window = "2m";
};

// --nats a,b --nats c: every URL once, in order.
std::vector<std::string> nats_urls(const std::vector<std::string>& values) {
  std::vector<std::string> urls;
  for (const auto& value : values) {
    std::size_t start = 0;
    while (start <= value.size()) {
      const std::size_t comma = std::min(value.find(',', start), value.size());
      const std::string url = value.substr(start, comma - start);
      if (url.empty()) throw UsageError("--nats: empty URL in \"" + value + "\"");
      urls.push_back(url);
      start = comma + 1;
    }
  }
  return urls;
}

// Cluster mode: the stream's limits follow the retention flags, like the local store's.
JetStreamOptions jetstream_options(const ServeFlags& flags, const ServerOptions& options) {
  JetStreamOptions nats;
  nats.urls = nats_urls(flags.nats);
  if (!is_valid_stream_name(flags.nats_stream)) {
    throw UsageError("--nats-stream \"" + flags.nats_stream +
                     "\": use 1-64 letters, digits, '_' or '-'");
  }
  nats.stream = flags.nats_stream;
  nats.replicas = flags.nats_replicas;
  try {
    nats.dedupe_window_us = parse_duration_us(flags.nats_dedupe_window);
  } catch (const evstream::Error& e) {
    throw UsageError(std::string("--nats-dedupe-window: ") + e.what());
  }
  nats.retain_age_us = options.retain_age_us;
  nats.retain_events = options.retain_events;
  return nats;
}

// Converts the typed flag values; a bad one is a usage error naming its flag.
void convert_flags(ServeFlags& flags) {
  ServerOptions& options = flags.server;
  const auto flag = [](const char* name, auto&& convert) {
    try {
      return convert();
    } catch (const evstream::Error& e) {
      throw UsageError(std::string(name) + ": " + e.what());
    }
  };
  options.ping_interval_us =
      flag("--ping-interval", [&] { return parse_duration_us(flags.ping_interval); });
  if (options.ping_interval_us < 100'000)
    throw UsageError("--ping-interval must be at least 100ms");
  options.client_queue_bytes =
      flag("--client-queue-bytes", [&] { return parse_size(flags.client_queue_bytes); });
  options.max_message_bytes =
      flag("--max-message-bytes", [&] { return parse_size(flags.max_message_bytes); });
  options.durability = parse_durability(flags.durability);
  if (!flags.retain_age.empty()) {
    options.retain_age_us =
        flag("--retain-age", [&] { return parse_duration_us(flags.retain_age); });
  }
  if (flags.retain_events > 0) options.retain_events = flags.retain_events;
  if (options.cert_path.empty() != options.key_path.empty()) {
    throw UsageError("--cert and --key go together: pass both to serve wss/https");
  }
  if (!flags.nats.empty()) options.nats = jetstream_options(flags, options);
}

int run_serve(ServeFlags& flags) {
  convert_flags(flags);
  const ServerOptions& options = flags.server;
  Logger logger(parse_log_level(flags.log_level), parse_log_format(flags.log_format));

  block_stop_signals();
  Server server(options, logger);
  std::cout << server.url() << std::endl;  // the one stdout line scripts wait for
  StopSignalWatcher signals([&server](int) { server.request_stop(); });
  server.run();
  return kExitOk;
}

}  // namespace

Runner add_serve(CLI::App& app) {
  auto flags = std::make_shared<ServeFlags>();
  CLI::App* sub = app.add_subcommand(
      "serve", "Persist published events and broadcast them to WebSocket subscribers");
  ServerOptions& o = flags->server;
  sub->add_option("--host", o.host, "Address to listen on")->capture_default_str();
  sub->add_option("--port", o.port, "Port to listen on (0: pick a free one)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  sub->add_option("--db", o.db, "SQLite database file, or :memory:")->capture_default_str();
  // One per core: each service thread owns its share of the connections, and fan-out (writing
  // every event to every subscriber) is the work that grows with them.
  o.threads = std::max(1u, std::thread::hardware_concurrency());
  sub->add_option("--threads", o.threads,
                  "Service threads, each serving its share of the connections (default: one per "
                  "core)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{256}));  // the default differs per machine
  sub->add_option("--durability", flags->durability,
                  "normal: survives kill -9; full: also survives power loss")
      ->check(CLI::IsMember({"normal", "full"}))
      ->capture_default_str();
  sub->add_option("--ping-interval", flags->ping_interval,
                  "Ping subscribers this often; close those silent for twice as long")
      ->check(duration_check())
      ->capture_default_str();
  sub->add_option("--client-queue", o.client_queue,
                  "Messages queued per subscriber before it is closed as a slow consumer")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 24))
      ->capture_default_str();
  sub->add_option("--client-queue-bytes", flags->client_queue_bytes,
                  "Bytes queued per subscriber before it is closed as a slow consumer")
      ->check(size_check())
      ->capture_default_str();
  sub->add_option("--max-message-bytes", flags->max_message_bytes,
                  "Largest accepted message; larger frames are closed with 1009")
      ->check(size_check())
      ->capture_default_str();
  sub->add_option("--max-clients", o.max_clients, "WebSocket connections accepted at once")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20))
      ->capture_default_str();
  sub->add_option("--retain-age", flags->retain_age, "Delete events older than this (e.g. 7d)")
      ->check(duration_check());
  sub->add_option("--retain-events", flags->retain_events,
                  "Keep at most this many events (0: no limit)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--token", o.token,
                  "Require this token to publish (WebSocket and HTTP): Authorization: Bearer T "
                  "or ?token=T");
  sub->add_option("--read-token", o.read_token,
                  "Require this token (or --token) to subscribe and to read the REST API");
  sub->add_option("--allow-origin", o.allow_origins,
                  "Browser origin allowed to connect (repeatable; '*' for any; default: any)");
  sub->add_option("--cert", o.cert_path, "TLS certificate (PEM) to serve wss:// and https://")
      ->check(CLI::ExistingFile);
  sub->add_option("--key", o.key_path, "TLS private key (PEM) for --cert")
      ->check(CLI::ExistingFile);
  sub->add_option("--log-format", flags->log_format, "Log format on stderr: text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  sub->add_option("--log-level", flags->log_level, "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}))
      ->capture_default_str();
  sub->add_option("--nats", flags->nats,
                  "Cluster mode: NATS JetStream servers (nats://host:port, comma-separated or "
                  "repeated) hold the log; --db becomes this node's replica");
  sub->add_option("--nats-stream", flags->nats_stream,
                  "JetStream stream shared by the cluster's nodes")
      ->capture_default_str();
  sub->add_option("--nats-replicas", flags->nats_replicas,
                  "Copies JetStream keeps when it creates the stream (3 needs 3 servers)")
      ->check(CLI::Range(1, 5))
      ->capture_default_str();
  sub->add_option("--nats-dedupe-window", flags->nats_dedupe_window,
                  "How long JetStream remembers idempotency keys (Nats-Msg-Id)")
      ->check(duration_check())
      ->capture_default_str();
  return [flags] { return run_serve(*flags); };
}

}  // namespace evstream::cmd
