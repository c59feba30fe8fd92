// evstream tail: follow live events; readable lines on a terminal, NDJSON in a pipe.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>

#include "cmd/commands.hpp"
#include "core/client/follower.hpp"
#include "core/client/ws_client.hpp"
#include "core/util/error.hpp"
#include "core/util/signals.hpp"
#include "core/wire/filter.hpp"

namespace evstream::cmd {

namespace {

struct TailFlags {
  std::vector<std::string> urls;  // empty: ws://localhost:8000
  std::string since;
  std::int64_t last = -1;
  std::uint64_t count = 0;
  bool json = false;
  bool no_color = false;
  bool wide = false;
  std::string retry_timeout;
  TailOptions options;
};

// --since takes an event id, a duration ago ("10m") or an RFC 3339 time.
void apply_since(const std::string& since, TailOptions& options) {
  if (since.empty()) return;
  if (since.find_first_not_of("0123456789") == std::string::npos) {
    try {
      options.since_id = std::stoll(since);
    } catch (const std::out_of_range&) {
      throw evstream::Error("invalid --since " + since + ": event ids are 64-bit integers");
    }
  } else if (auto time = parse_rfc3339(since)) {
    options.since_time_us = *time;
  } else {
    try {
      options.since_time_us = now_unix_us() - parse_duration_us(since);
    } catch (const evstream::Error&) {
      throw evstream::Error("invalid --since \"" + since +
                            "\": use an event id (42), a duration ago (10m, 2h) or an RFC 3339 "
                            "time (2026-11-25T17:00:00Z)");
    }
  }
}

int run_tail_command(TailFlags& flags) {
  TailOptions& options = flags.options;
  try {  // a bad option value is a usage error (2)
    options.urls = server_urls(flags.urls, "/ws/events");
    for (const auto& expression : options.where) {  // refused here, before any connection
      const auto parsed = parse_filter_clause(expression);
      if (const auto* error = std::get_if<FilterError>(&parsed)) {
        throw evstream::Error(error->describe());
      }
    }
    apply_since(flags.since, options);
    if (!flags.retry_timeout.empty())
      options.retry_timeout_us = parse_duration_us(flags.retry_timeout);
  } catch (const evstream::Error& e) {
    std::fprintf(stderr, "evstream: error: %s\n", e.what());
    return kExitUsage;
  }
  if (flags.last >= 0) options.last = flags.last;
  if (flags.count > 0) options.count = flags.count;
  const bool terminal = isatty(STDOUT_FILENO) != 0;
  if (!options.format.empty()) {
    options.output = TailOptions::Output::custom;
  } else if (terminal && !flags.json) {
    options.output = TailOptions::Output::pretty;
  }
  options.color = terminal && !flags.no_color && std::getenv("NO_COLOR") == nullptr;
  options.fit = terminal && !flags.wide;  // one line per event, like kubectl get and journalctl

  block_stop_signals();
  ClientLoop loop(4);
  StopSignalWatcher signals([&loop](int) { loop.stop(); });
  const TailResult result = run_tail(options, loop);
  if (result.end == TailResult::End::unreachable) {
    std::fprintf(stderr, "evstream: error: cannot reach %s: %s%s\n",
                 to_string(options.urls).c_str(), result.reason.c_str(),
                 reach_hint(result.reason).c_str());
    return kExitUnavailable;
  }
  return kExitOk;  // count reached, Ctrl-C, or a closed stdout (`| head -1`)
}

}  // namespace

Runner add_tail(CLI::App& app) {
  auto flags = std::make_shared<TailFlags>();
  CLI::App* sub = app.add_subcommand("tail", "Follow live events (resumes across reconnects)");
  add_urls_option(sub, flags->urls,
                  "Server URL (ws://, wss://, http://, https://); several (A,B or repeated): "
                  "fail over in order, resuming by id");
  sub->add_option("--topic", flags->options.topics, "Only these topics (repeatable)");
  sub->add_option("--where", flags->options.where,
                  "Only events whose data matches, e.g. 'objects.label = person' (repeatable: "
                  "all must hold)");
  sub->add_option("--since", flags->since,
                  "Start after an event id, a duration ago (10m) or an RFC 3339 time");
  sub->add_option("-n,--last", flags->last, "Start with the last N stored events")
      ->check(CLI::NonNegativeNumber);
  sub->add_flag("--json", flags->json, "NDJSON records even on a terminal");
  sub->add_option("--format", flags->options.format,
                  "Template per event: {id} {time} {topic} {data} {data.field.sub}");
  sub->add_option("--count", flags->count, "Exit after N events")->check(CLI::PositiveNumber);
  sub->add_flag("--no-color", flags->no_color, "No colours (also when NO_COLOR is set)");
  sub->add_flag("--wide", flags->wide,
                "On a terminal, print each event whole instead of cutting it to the width");
  sub->add_option("--exec", flags->options.exec,
                  "Run CMD per event: record on stdin, EVSTREAM_ID and EVSTREAM_TOPIC set");
  sub->add_option("--token", flags->options.token, "Read token (when the server has --read-token)");
  sub->add_option("--retry-timeout", flags->retry_timeout,
                  "Give up (exit 69) when the server stays unreachable this long (default: never)")
      ->check(duration_check());
  sub->get_option("--since")->excludes(sub->get_option("--last"));
  flags->options.out = stdout;
  return [flags] { return run_tail_command(*flags); };
}

}  // namespace evstream::cmd
