// evstream publish: NDJSON (stdin or arguments) to a server, every event acked exactly once.
#include <cstdio>
#include <memory>

#include "cmd/commands.hpp"
#include "core/client/publisher.hpp"
#include "core/client/ws_client.hpp"
#include "core/util/error.hpp"
#include "core/util/signals.hpp"

namespace evstream::cmd {

namespace {

struct PublishFlags {
  std::vector<std::string> urls;  // empty: ws://localhost:8000
  std::string token;
  std::string retry_timeout = "30s";
  PublishOptions options;
};

int run_publish_command(PublishFlags& flags) {
  PublishOptions& options = flags.options;
  try {  // a bad option value is a usage error (2), not rejected lines (1)
    options.urls = server_urls(flags.urls, "/ws/publish");
    options.retry_timeout_us = parse_duration_us(flags.retry_timeout);
  } catch (const evstream::Error& e) {
    std::fprintf(stderr, "evstream: error: %s\n", e.what());
    return kExitUsage;
  }
  add_token(options.urls, flags.token);
  block_stop_signals();
  ClientLoop loop(4);
  StopSignalWatcher signals([&loop](int) { loop.stop(); });
  const PublishSummary summary = run_publish(options, loop);
  if (summary.unreachable) {
    std::fprintf(stderr, "evstream: error: cannot reach %s: %s%s\n",
                 to_string(options.urls).c_str(), summary.unreachable_reason.c_str(),
                 reach_hint(summary.unreachable_reason, flags.retry_timeout).c_str());
  }
  if (!options.quiet || summary.rejected > 0) {
    std::fprintf(stderr, "evstream publish: %s%s\n", summary.line().c_str(),
                 summary.interrupted ? " (interrupted)" : "");
  }
  if (summary.unreachable) return kExitUnavailable;
  if (summary.interrupted) return 130;
  return summary.rejected > 0 ? kExitRejected : kExitOk;
}

}  // namespace

Runner add_publish(CLI::App& app) {
  auto flags = std::make_shared<PublishFlags>();
  CLI::App* sub = app.add_subcommand(
      "publish", "Publish events: NDJSON lines from stdin, or JSON objects as arguments");
  add_urls_option(sub, flags->urls,
                  "Server URL (ws://, wss://, http://, https://); several (A,B or repeated): "
                  "fail over in order");
  sub->add_option("--topic", flags->options.topic, "Topic for events that do not name one");
  sub->add_option("--key-field", flags->options.key_field,
                  "Take each event's idempotency key from this data field");
  sub->add_option("--token", flags->token, "Publish token (when the server has --token)");
  sub->add_option("--window", flags->options.window, "Unacked events in flight")
      ->check(CLI::Range(std::size_t{1}, std::size_t{100000}))
      ->capture_default_str();
  sub->add_option("--retry-timeout", flags->retry_timeout,
                  "Give up (exit 69) when the server stays unreachable this long")
      ->check(duration_check())
      ->capture_default_str();
  sub->add_flag("-q,--quiet", flags->options.quiet, "No summary line on success");
  sub->add_option("events", flags->options.events, "Events as JSON objects (instead of stdin)");
  return [flags] { return run_publish_command(*flags); };
}

}  // namespace evstream::cmd
