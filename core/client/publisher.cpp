#include "core/client/publisher.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <random>

#include "core/client/ws_client.hpp"
#include "core/util/failover.hpp"
#include "core/util/line_reader.hpp"
#include "core/wire/json_text.hpp"
#include "core/wire/protocol.hpp"

namespace evstream {

namespace {

struct Outgoing {
  std::uint64_t line = 0;
  std::string frame;  // the envelope as sent (with its key), resent as is after a reconnect
};

std::string random_run_id() {
  std::random_device device;
  char buf[24];
  std::snprintf(buf, sizeof buf, "%08x%08x", device(), device());
  return buf;
}

void report(std::uint64_t line, const std::string& reason) {
  std::fprintf(stderr, "evstream publish: line %llu: %s\n", static_cast<unsigned long long>(line),
               reason.c_str());
}

class Publisher final : public WsHandler {
 public:
  Publisher(const PublishOptions& options, ClientLoop& loop)
      : m_options(options),
        m_loop(loop),
        m_connection(loop, *this),
        m_run_id(random_run_id()),
        m_failover(options.urls, options.retry_timeout_us) {}

  PublishSummary run() {
    std::unique_ptr<LineReader> reader;
    if (m_options.events.empty()) {
      reader = std::make_unique<LineReader>(m_options.input_fd, [this] { m_loop.wake(); });
      m_reader = reader.get();
    } else {
      std::uint64_t number = 0;
      for (const auto& event : m_options.events) accept(Line{++number, event});
      m_input_done = true;
    }
    m_loop.set_on_wake([this] { take_input(); });
    take_input();
    if (!finished()) connect();
    // Done once everything is acked and the connection closed cleanly (so the server logs a
    // normal close rather than a lost connection).
    m_loop.run([this] {
      return (finished() && !m_connection.is_open() && !m_connection.is_connecting()) ||
             m_summary.unreachable;
    });
    m_summary.interrupted = m_loop.stopping() && !finished();
    m_loop.set_on_wake(nullptr);
    return m_summary;
  }

  void on_open(WsConnection&) override {
    m_failover.opened();
    pump();
  }

  void on_message(WsConnection&, std::string_view text) override {
    const auto message = decode_server_message(text);
    if (!message || (message->type != ServerMessage::Type::ack &&
                     message->type != ServerMessage::Type::error)) {
      return;
    }
    if (m_in_flight.empty()) return;  // a reply we did not ask for: nothing to match it with
    const Outgoing sent = std::move(m_in_flight.front());
    m_in_flight.pop_front();
    if (message->type == ServerMessage::Type::ack) {
      record_ack(*message->id, message->duplicate);
    } else {
      ++m_summary.rejected;
      report(sent.line, "rejected by the server: " + message->message);
    }
    pump();
    take_input();
  }

  void on_closed(WsConnection& connection, const std::string& reason) override {
    if (connection.refused_auth()) {
      m_summary.unreachable = true;
      m_summary.unreachable_reason = reason;
      return;
    }
    // Everything unacked goes back in front, in order, to be resent with the same keys.
    const std::size_t unacked = m_in_flight.size();
    while (!m_in_flight.empty()) {
      m_to_send.push_front(std::move(m_in_flight.back()));
      m_in_flight.pop_back();
    }
    if (reason.find("(1009") != std::string::npos) reject_oversized(reason, unacked);
    if (finished() && m_connection.is_open()) m_connection.close();
    if (finished() || m_loop.stopping()) return;
    const Failover::Step step = m_failover.failed(now_unix_us());
    if (step.give_up) {
      m_summary.unreachable = true;
      m_summary.unreachable_reason = reason;
      return;
    }
    if (!m_options.quiet) {
      std::fprintf(stderr, "evstream publish: %s\n",
                   m_failover.describe(step, reason, "retrying").c_str());
    }
    m_retry_pending = true;
    // Through a timer even without a pause: this runs inside the lws callback of the old wsi.
    m_loop.after(step.delay_us, [this] {
      m_retry_pending = false;
      connect();
    });
  }

 private:
  bool finished() const { return m_input_done && m_to_send.empty() && m_in_flight.empty(); }

  void connect() {
    if (!m_connection.is_open() && !m_connection.is_connecting())
      m_connection.connect(m_failover.current());
  }

  void take_input() {
    // Backpressure: while a window's worth waits to be sent, lines stay in the reader's bounded
    // queue (and then the pipe), so a fast input does not pile up here. Acks call this again.
    if (m_reader == nullptr || m_to_send.size() >= m_options.window) return;
    std::vector<Line> lines;
    const bool eof = m_reader->take(lines);
    for (auto& line : lines) accept(std::move(line));
    if (eof) m_input_done = true;
    pump();
    if (finished() && m_connection.is_open()) m_connection.close();
  }

  void accept(Line line) {
    if (line.text.find_first_not_of(" \t\r") == std::string::npos) return;  // blank lines
    auto decoded =
        decode_publish(line.text, m_options.topic.empty() ? kDefaultTopic : m_options.topic);
    if (const auto* error = std::get_if<std::string>(&decoded)) {
      ++m_summary.rejected;
      report(line.number, *error);
      return;
    }
    auto& request = std::get<PublishRequest>(decoded);
    if (!request.key) {
      if (m_options.key_field.empty()) {
        request.key = m_run_id + ":" + std::to_string(line.number);
      } else if (auto key = key_from_field(request.data)) {
        request.key = std::move(*key);
      } else {
        ++m_summary.rejected;
        report(line.number, "no string or number field \"" + m_options.key_field +
                                "\" for --key-field (or it is longer than 256 bytes)");
        return;
      }
    }
    std::string frame = R"({"type":"event","topic":)" + json_quote(request.topic) + R"(,"key":)" +
                        json_quote(*request.key) + R"(,"data":)" + request.data + "}";
    m_to_send.push_back(Outgoing{line.number, std::move(frame)});
  }

  std::optional<std::string> key_from_field(std::string_view data) const {
    for (const auto& member : top_level_members(data)) {
      if (member.key != m_options.key_field) continue;
      std::optional<std::string> key = decode_json_string(member.value);
      if (!key && !member.value.empty() &&
          (member.value.front() == '-' ||
           (member.value.front() >= '0' && member.value.front() <= '9'))) {
        key = std::string(member.value);
      }
      if (key && !key->empty() && key->size() <= kMaxKeyBytes) return key;
      return std::nullopt;
    }
    return std::nullopt;
  }

  // The server closed with 1009 (message too big): resending the same frame would only repeat
  // that, so the oversized lines are rejected. The close reason names the limit ("message larger
  // than N bytes"); without it, the largest of the `unacked` frames is the one it refused.
  void reject_oversized(const std::string& reason, std::size_t unacked) {
    std::size_t limit = 0;
    const auto at = reason.find("larger than ");
    if (at != std::string::npos) limit = std::strtoull(reason.c_str() + at + 12, nullptr, 10);
    const auto too_large = [this](std::deque<Outgoing>::iterator it, const std::string& why) {
      ++m_summary.rejected;
      report(it->line, why);
      return m_to_send.erase(it);
    };
    if (limit > 0) {
      for (auto it = m_to_send.begin(); it != m_to_send.end();) {
        it = it->frame.size() > limit
                 ? too_large(it, "too large for the server (" + std::to_string(it->frame.size()) +
                                     " bytes as sent, it accepts at most " + std::to_string(limit) +
                                     ")")
                 : std::next(it);
      }
      return;
    }
    if (unacked == 0 || m_to_send.empty()) return;
    const auto end =
        m_to_send.begin() + static_cast<std::ptrdiff_t>(std::min(unacked, m_to_send.size()));
    const auto largest = std::max_element(m_to_send.begin(), end, [](const auto& a, const auto& b) {
      return a.frame.size() < b.frame.size();
    });
    too_large(largest, "too large for the server (" + std::to_string(largest->frame.size()) +
                           " bytes as sent; it closed the connection with 1009)");
  }

  void pump() {
    if (!m_connection.is_open()) {
      // While a reconnect is scheduled, new input waits for it (keeps the backoff).
      if (!m_to_send.empty() && !m_retry_pending) connect();
      return;
    }
    while (!m_to_send.empty() && m_in_flight.size() < m_options.window) {
      m_connection.send(m_to_send.front().frame);
      m_in_flight.push_back(std::move(m_to_send.front()));
      m_to_send.pop_front();
    }
    if (finished()) m_connection.close();
  }

  void record_ack(EventId id, bool duplicate) {
    ++m_summary.acked;
    if (duplicate) ++m_summary.duplicates;
    if (m_summary.first_id == 0 || id < m_summary.first_id) m_summary.first_id = id;
    if (id > m_summary.last_id) m_summary.last_id = id;
  }

  const PublishOptions& m_options;
  ClientLoop& m_loop;
  WsConnection m_connection;
  std::string m_run_id;
  LineReader* m_reader = nullptr;
  bool m_input_done = false;
  std::deque<Outgoing> m_to_send;
  std::deque<Outgoing> m_in_flight;
  Failover m_failover;
  bool m_retry_pending = false;
  PublishSummary m_summary;
};

}  // namespace

std::string PublishSummary::line() const {
  std::string out = "published " + count_of(acked, "event");
  if (first_id == last_id && acked > 0) {
    out += " (id " + std::to_string(first_id) + ")";
  } else if (acked > 0) {
    out += " (ids " + std::to_string(first_id) + "-" + std::to_string(last_id) + ")";
  }
  if (duplicates > 0) out += ", " + std::to_string(duplicates) + " already stored";
  out += ", " + std::to_string(rejected) + " rejected";
  return out;
}

PublishSummary run_publish(const PublishOptions& options, ClientLoop& loop) {
  Publisher publisher(options, loop);
  return publisher.run();
}

}  // namespace evstream
