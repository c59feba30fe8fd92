// evstream replay: stored events in id order, to stdout (paced if asked) or to another server.
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>

#include "cmd/commands.hpp"
#include "core/client/replay.hpp"
#include "core/client/ws_client.hpp"
#include "core/util/error.hpp"
#include "core/util/signals.hpp"

namespace evstream::cmd {

namespace {

struct ReplayFlags {
  std::string db;
  std::vector<std::string> urls;
  std::string since;
  std::string until;
  std::vector<std::string> topics;
  std::vector<std::string> where;
  double speed = 0;  // as fast as possible: replay is mostly for catching up or copying
  bool data_only = false;
  std::vector<std::string> to;
  std::string token;
  std::string read_token;
  std::string retry_timeout = "30s";
};

const char* const kBoundForms =
    "use an event id (42), an RFC 3339 time (2026-11-25T17:00:00Z) or a duration ago (10m, 2h)";

// --since is exclusive for ids (resume after 42, as tail does), --until inclusive.
void apply_bound(const char* name, const std::string& text, std::int64_t now, bool since,
                 ReplayFilter& filter) {
  if (text.empty()) return;
  const auto bound = parse_replay_bound(text, now);
  if (!bound)
    throw UsageError(std::string("invalid ") + name + " \"" + text + "\": " + kBoundForms);
  if (const auto* id = std::get_if<EventId>(&*bound)) {
    (since ? filter.after : filter.until_id) = *id;
  } else {
    (since ? filter.since_us : filter.until_us) = std::get<ReplayTime>(*bound).unix_us;
  }
}

ReplayFilter make_filter(const ReplayFlags& flags) {
  ReplayFilter filter;
  const std::int64_t now = now_unix_us();  // both bounds from the same instant
  apply_bound("--since", flags.since, now, true, filter);
  apply_bound("--until", flags.until, now, false, filter);
  for (const auto& topic : flags.topics) {
    if (auto error = topic_error(topic); !error.empty()) {
      throw UsageError("invalid --topic \"" + topic + "\": " + error);
    }
  }
  filter.topics = flags.topics;
  return filter;
}

// The flags, checked before anything is opened: a bad value is a usage error (2).
struct Plan {
  ReplayFilter filter;
  Filter where;                           // --where, applied to what the source reads
  std::optional<std::vector<WsUrl>> url;  // the --url source (its servers)
  std::optional<PublishOptions> target;   // --to
};

Plan make_plan(const ReplayFlags& flags) {
  if (flags.db.empty() == flags.urls.empty()) {
    throw UsageError("give exactly one source: --db FILE or --url SERVER");
  }
  if (!std::isfinite(flags.speed) || flags.speed < 0) {
    throw UsageError("--speed must be 0 (as fast as possible) or a positive factor (1, 10)");
  }
  Plan plan{make_filter(flags), {}, {}, {}};
  for (const auto& expression : flags.where) {
    auto parsed = parse_filter_clause(expression);
    if (const auto* error = std::get_if<FilterError>(&parsed)) throw UsageError(error->describe());
    plan.where.clauses.push_back(std::move(std::get<FilterClause>(parsed)));
  }
  try {
    if (!flags.urls.empty()) plan.url = parse_ws_url_list(flags.urls, "/");
    if (flags.to.empty()) return plan;
    PublishOptions& target = plan.target.emplace();
    target.urls = parse_ws_url_list(flags.to, "/ws/publish");
    target.retry_timeout_us = parse_duration_us(flags.retry_timeout);
    add_token(target.urls, flags.token);
  } catch (const evstream::Error& e) {
    throw UsageError(e.what());
  }
  return plan;
}

int republish(const ReplayFlags& flags, const PublishOptions& target, RecordSource& source,
              Pacer& pacer, StopFlag& stop) {
  ClientLoop loop(4);
  StopSignalWatcher signals([&](int) {
    stop.request();
    source.interrupt();
    loop.stop();
  });
  const RepublishResult result = replay_to_server(source, pacer, stop, target, loop);
  const PublishSummary& summary = result.summary;
  if (summary.unreachable) {
    std::fprintf(stderr, "evstream: error: cannot reach %s: %s (--retry-timeout %s passed)\n",
                 to_string(target.urls).c_str(), summary.unreachable_reason.c_str(),
                 flags.retry_timeout.c_str());
  }
  const bool interrupted = summary.interrupted || result.replay.end != ReplayResult::End::done;
  std::fprintf(stderr, "evstream replay: %s%s\n", summary.line().c_str(),
               interrupted && !summary.unreachable ? " (interrupted)" : "");
  if (!result.source_error.empty()) {
    std::fprintf(stderr, "evstream: error: %s\n", result.source_error.c_str());
  }
  if (summary.unreachable || result.source_unreachable) return kExitUnavailable;
  if (!result.source_error.empty() || summary.rejected > 0) return kExitRejected;
  return interrupted ? 130 : kExitOk;
}

int run_replay_command(const ReplayFlags& flags) {
  Plan plan = make_plan(flags);
  block_stop_signals();  // before any thread starts; also turns a closed stdout into EPIPE
  std::unique_ptr<RecordSource> source;
  if (plan.url) {
    const std::string& token = flags.read_token.empty() ? flags.token : flags.read_token;
    source = std::make_unique<RestSource>(*plan.url, std::move(plan.filter), token);
  } else {
    source = std::make_unique<StoreSource>(flags.db, std::move(plan.filter));
  }
  if (!plan.where.empty()) {
    source = std::make_unique<FilteredSource>(std::move(source), std::move(plan.where));
  }
  Pacer pacer(flags.speed);
  StopFlag stop;
  if (plan.target) return republish(flags, *plan.target, *source, pacer, stop);

  StopSignalWatcher signals([&](int) {
    stop.request();
    source->interrupt();
  });
  try {
    const ReplayResult result = replay_to_file(
        *source, pacer, stop, stdout, flags.data_only ? ReplayFormat::data : ReplayFormat::records);
    return result.end == ReplayResult::End::interrupted ? 130 : kExitOk;
  } catch (const SourceUnreachable& e) {
    std::fprintf(stderr, "evstream: error: %s\n", e.what());
    return kExitUnavailable;
  }
}

}  // namespace

Runner add_replay(CLI::App& app) {
  auto flags = std::make_shared<ReplayFlags>();
  CLI::App* sub =
      app.add_subcommand("replay", "Replay stored events in id order, from a database or a server");
  auto* db = sub->add_option("--db", flags->db, "Read this database file (read-only)");
  // Two sources are an error; EVSTREAM_URL (or EVSTREAM_DB) yields to the other one given as a
  // flag.
  auto* url = sub->add_option("--url", flags->urls,
                              "Read this server's REST API; several (A,B or repeated): fail over "
                              "in order")
                  ->allow_extra_args(false);
  db->excludes(url);
  sub->add_option("--since", flags->since,
                  "Start after an event id, or at an RFC 3339 time or a duration ago");
  sub->add_option("--until", flags->until,
                  "Stop at an event id (included), an RFC 3339 time or a duration ago");
  sub->add_option("--topic", flags->topics, "Only these topics (repeatable)");
  sub->add_option("--where", flags->where,
                  "Only events whose data matches, e.g. 'objects.label = person' (repeatable: "
                  "all must hold)");
  sub->add_option("--speed", flags->speed,
                  "Pace by the original times: 1 real time, 10 ten times faster, 0 no pauses")
      ->capture_default_str();
  auto* data_only =
      sub->add_flag("--data-only", flags->data_only, "Only the data objects (input for publish)");
  auto* to = sub->add_option("--to", flags->to,
                             "Republish to this server instead of stdout; several (A,B or "
                             "repeated): fail over in order")
                 ->allow_extra_args(false);
  to->excludes(data_only);
  sub->add_option("--token", flags->token, "Publish token for --to");
  sub->add_option("--read-token", flags->read_token, "Read token for --url (default: --token)");
  sub->add_option("--retry-timeout", flags->retry_timeout,
                  "With --to: give up (exit 69) when it stays unreachable this long")
      ->check(duration_check())
      ->capture_default_str();
  return [flags] { return run_replay_command(*flags); };
}

}  // namespace evstream::cmd
