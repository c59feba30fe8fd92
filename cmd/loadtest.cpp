// evstream loadtest: N subscribers + a paced publisher against a running server; PASS/FAIL.
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>

#include "cmd/commands.hpp"
#include "core/client/loadtest.hpp"
#include "core/client/ws_client.hpp"
#include "core/util/error.hpp"
#include "core/util/signals.hpp"

namespace evstream::cmd {

namespace {

struct LoadtestFlags {
  std::vector<std::string> urls;  // empty: ws://localhost:8000
  std::string publish_url;        // empty: the first of urls
  std::string duration = "10s";
  std::string size = "1KiB";
  std::string slo;
  bool json = false;
  LoadtestOptions options;
};

void raise_fd_limit(std::size_t needed) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur < needed) {
    throw evstream::Error("--clients " + std::to_string(needed - 64) + " needs " +
                          std::to_string(needed) + " open files but the limit is " +
                          std::to_string(limit.rlim_cur) + " (raise ulimit -n)");
  }
}

int run_loadtest_command(LoadtestFlags& flags) {
  LoadtestOptions& options = flags.options;
  // The acceptance targets: everyone connected, nothing lost, p99 < 100 ms, < 10 MB per 100.
  const std::string slo =
      !flags.slo.empty()
          ? flags.slo
          : "connected=100%,loss=0,p99<100ms,rss_growth<" +
                std::to_string(std::max<std::size_t>(1, options.clients / 100) * 10) + "MB";
  std::vector<SloCheck> checks;
  try {  // a bad option value is a usage error (2), not a missed SLO (1)
    options.urls = server_urls(flags.urls, "/");
    if (!flags.publish_url.empty()) options.publish_url = parse_ws_url(flags.publish_url, "/");
    options.duration_us = parse_duration_us(flags.duration);
    options.size = parse_size(flags.size);
    checks = parse_slo(slo);
    if (options.where_cameras > options.cameras) {
      throw Error("--where-cameras " + std::to_string(options.where_cameras) +
                  " needs at least that many --cameras (have " + std::to_string(options.cameras) +
                  ")");
    }
  } catch (const evstream::Error& e) {
    std::fprintf(stderr, "evstream: error: %s\n", e.what());
    return kExitUsage;
  }
  options.progress = isatty(STDERR_FILENO) != 0;
  raise_fd_limit(options.clients + 64);

  block_stop_signals();
  ClientLoop loop(loadtest_loop_options(options, loadtest_shard_clients(options, 0)));
  if (!loop.uses_epoll()) {
    std::fprintf(stderr,
                 "evstream: warning: libwebsockets' libev plugin is missing (Debian package "
                 "libwebsockets-evlib-ev): loadtest waits with poll(), which costs more CPU\n");
  }
  StopSignalWatcher signals([&loop](int) { loop.stop(); });
  if (options.read_token.empty()) options.read_token = options.token;  // --token also reads
  const LoadtestReport report = run_loadtest(options, loop);
  const auto results = evaluate_slo(checks, report);
  std::cout << (flags.json ? report_json(report, results) + "\n" : report_table(report, results))
            << std::flush;
  bool pass = report.error.empty();
  for (const auto& result : results)
    pass = pass && (result.pass || result.actual_text == "unknown");
  if (!report.error.empty() && report.connected == 0 && report.published == 0) {
    std::fprintf(stderr, "evstream: error: %s (is `evstream serve` running?)\n",
                 report.error.c_str());
    return kExitUnavailable;
  }
  return pass ? kExitOk : kExitRejected;
}

}  // namespace

Runner add_loadtest(CLI::App& app) {
  auto flags = std::make_shared<LoadtestFlags>();
  LoadtestOptions& o = flags->options;
  CLI::App* sub = app.add_subcommand(
      "loadtest", "Measure latency, loss and memory with N subscribers and a paced publisher");
  add_urls_option(sub, flags->urls,
                  "Server URL; several (A,B or repeated, nodes of one cluster): subscribers "
                  "round-robin, the publisher on the first");
  sub->add_option("--publish-url", flags->publish_url,
                  "Publish through this server instead (another node of the cluster)");
  sub->add_option("--clients", o.clients, "Subscribers to open")
      ->check(CLI::Range(std::size_t{1}, std::size_t{19000}))
      ->capture_default_str();
  sub->add_option("--duration", flags->duration, "How long to publish")
      ->check(duration_check())
      ->capture_default_str();
  sub->add_option("--rate", o.rate, "Events per second (0: as fast as the server acks)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub->add_option("--size", flags->size, "Approximate size of each event's data")
      ->check(size_check())
      ->capture_default_str();
  sub->add_option("--ramp", o.ramp, "Connections opened per second (0: as fast as possible)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--topic", o.topic, "Publish and subscribe on this topic");
  sub->add_option("--cameras", o.cameras,
                  "Events carry camera_id cam-0..cam-(N-1), round-robin (for filter benchmarks)");
  sub->add_option("--where-cameras", o.where_cameras,
                  "Each subscriber filters server-side on this many cameras (where=camera_id in "
                  "...), a different set each")
      ->needs("--cameras");
  sub->add_option("--window", o.window, "Unacked events in flight when --rate is 0")
      ->capture_default_str();
  sub->add_option("--threads", o.threads,
                  "Threads receiving for the subscribers (each with its own share of them)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{64}))
      ->capture_default_str();
  sub->add_option("--server-pid", o.server_pid,
                  "Read server RSS and CPU from /proc for this pid (else from /api/health)");
  sub->add_option("--token", o.token, "Publish token");
  sub->add_option("--read-token", o.read_token, "Read token (default: --token)");
  sub->add_option("--slo", flags->slo,
                  "Checks, e.g. 'p99<100ms,loss=0,connected=100%,rss_growth<10MB' (default: the "
                  "acceptance targets)");
  sub->add_flag("--json", flags->json, "One JSON report on stdout instead of the table");
  return [flags] { return run_loadtest_command(*flags); };
}

}  // namespace evstream::cmd
