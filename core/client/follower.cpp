#include "core/client/follower.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>

#include "core/client/ws_client.hpp"
#include "core/util/failover.hpp"
#include "core/util/terminal.hpp"
#include "core/wire/protocol.hpp"
#include "core/wire/record_format.hpp"

namespace evstream {

namespace {

// Runs `command` with sh -c, the record on its stdin and EVSTREAM_ID/EVSTREAM_TOPIC set.
void run_exec(const std::string& command, const WireRecord& record, const std::string& line) {
  int fds[2];
  if (pipe(fds) != 0) return;
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[0], 0);
    close(fds[0]);
    close(fds[1]);
    setenv("EVSTREAM_ID", std::to_string(record.id).c_str(), 1);
    setenv("EVSTREAM_TOPIC", std::string(record.topic).c_str(), 1);
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[0]);
  if (pid > 0) {
    std::string input = line + "\n";
    for (std::size_t done = 0; done < input.size();) {
      const ssize_t n = write(fds[1], input.data() + done, input.size() - done);
      if (n <= 0) break;  // the command need not read its input
      done += static_cast<std::size_t>(n);
    }
  }
  close(fds[1]);
  if (pid > 0) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

class Follower final : public WsHandler {
 public:
  Follower(const TailOptions& options, ClientLoop& loop)
      : m_options(options),
        m_loop(loop),
        m_connection(loop, *this),
        m_failover(options.urls, options.retry_timeout_us) {}

  TailResult run() {
    connect();
    // Done, and the connection closed with a close frame (the server logs a normal close).
    m_loop.run(
        [this] { return m_done && !m_connection.is_open() && !m_connection.is_connecting(); });
    return m_result;
  }

  void on_open(WsConnection&) override {
    if (m_reconnecting && m_failover.several()) {
      std::fprintf(stderr, "evstream tail: reconnected to %s\n",
                   m_failover.current().to_string().c_str());
    } else if (m_reconnecting) {
      std::fprintf(stderr, "evstream tail: reconnected\n");
    }
    m_reconnecting = false;
    m_failover.opened();
  }

  void on_message(WsConnection& connection, std::string_view text) override {
    // Several messages can arrive in one service call: after --count or a closed stdout, the
    // rest must not be printed (run() only re-checks m_done between service calls).
    if (m_done) return;
    const auto message = decode_server_message(text);
    if (!message) return;
    switch (message->type) {
      case ServerMessage::Type::ping:
        connection.send(R"({"type":"pong","timestamp":")" + format_rfc3339(now_unix_us()) + "\"}");
        break;
      case ServerMessage::Type::event:
        on_event(*message);
        break;
      case ServerMessage::Type::error:
        std::fprintf(stderr, "evstream tail: server says: %s\n", message->message.c_str());
        break;
      default:
        break;
    }
  }

  void on_closed(WsConnection& connection, const std::string& reason) override {
    if (m_done || m_loop.stopping()) return;
    if (connection.refused_auth()) {
      finish(TailResult::End::unreachable, reason);
      return;
    }
    const Failover::Step step = m_failover.failed(now_unix_us());
    if (step.give_up) {
      finish(TailResult::End::unreachable, reason);
      return;
    }
    std::fprintf(stderr, "evstream tail: %s\n",
                 m_failover.describe(step, reason, "reconnecting").c_str());
    m_reconnecting = true;
    // Through a timer even without a pause: this runs inside the lws callback of the old wsi.
    m_loop.after(step.delay_us, [this] { connect(); });
  }

 private:
  void connect() {
    // Resuming after the last id printed is what makes a failover seamless: cluster nodes
    // serve the same events under the same ids.
    WsUrl url = m_failover.current();
    url.path = tail_path(m_options, url, m_last_id);
    m_connection.connect(url);
  }

  void on_event(const ServerMessage& message) {
    // After a reconnect the server resumes after m_last_id; this guards against any overlap.
    if (m_last_id && *message.id <= *m_last_id) return;
    m_last_id = *message.id;
    const WireRecord record{*message.id, message.topic, message.time, message.data};
    std::string line;
    switch (m_options.output) {
      case TailOptions::Output::json:
        line = format_json_line(record);
        break;
      case TailOptions::Output::pretty:
        line = format_pretty_line(record, m_options.color);
        break;
      case TailOptions::Output::custom:
        line = format_template(m_options.format, record);
        break;
    }
    // Read per line, so a resized terminal applies from the next event (one ioctl per line).
    if (m_options.fit && m_options.output != TailOptions::Output::json)
      line = fit_to_width(line, terminal_columns(fileno(m_options.out)));
    if (!m_options.exec.empty()) {
      run_exec(m_options.exec, record, format_json_line(record));
    } else {
      line += '\n';
      if (std::fwrite(line.data(), 1, line.size(), m_options.out) != line.size() ||
          std::fflush(m_options.out) != 0) {
        finish(TailResult::End::output_closed, std::strerror(errno));
        return;
      }
    }
    ++m_result.events;
    if (m_options.count && m_result.events >= *m_options.count) {
      finish(TailResult::End::count_reached, {});
    }
  }

  void finish(TailResult::End end, std::string reason) {
    m_result.end = end;
    m_result.reason = std::move(reason);
    m_done = true;
    if (m_connection.is_open()) m_connection.close();
  }

  const TailOptions& m_options;
  ClientLoop& m_loop;
  WsConnection m_connection;
  std::optional<EventId> m_last_id;
  Failover m_failover;
  bool m_reconnecting = false;
  bool m_done = false;
  TailResult m_result;
};

}  // namespace

std::string tail_path(const TailOptions& options, const WsUrl& server,
                      std::optional<EventId> resume_after) {
  std::string path = server.path;
  std::string query;
  const auto add = [&query](std::string_view name, const std::string& value) {
    query += query.empty() ? "" : "&";
    query += name;
    query += '=';
    query += url_encode(value);
  };
  for (const auto& topic : options.topics) add("topic", topic);
  for (const auto& expression : options.where) add("where", expression);
  if (resume_after) {
    add("since", std::to_string(*resume_after));
  } else if (options.since_id) {
    add("since", std::to_string(*options.since_id));
  } else if (options.since_time_us) {
    add("since_time", format_rfc3339(*options.since_time_us));
  } else if (options.last) {
    add("last", std::to_string(*options.last));
  }
  if (!options.token.empty()) add("token", options.token);
  if (query.empty()) return path;
  return path + (path.find('?') == std::string::npos ? "?" : "&") + query;
}

TailResult run_tail(const TailOptions& options, ClientLoop& loop) {
  Follower follower(options, loop);
  return follower.run();
}

}  // namespace evstream
