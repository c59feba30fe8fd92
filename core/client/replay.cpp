// Replay's pacing and outputs: NDJSON to a FILE*, or envelopes into the publisher's input.
#include "core/client/replay.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "core/client/ws_client.hpp"
#include "core/wire/json_text.hpp"

namespace evstream {

namespace {

// Far beyond any real schedule; keeps the double -> int64 conversion defined for tiny speeds.
constexpr double kMaxOffsetUs = 1e17;
// Envelopes are sent to the publisher in chunks of about this size.
constexpr std::size_t kSocketChunk = 64 * 1024;

enum class LineKind { record, data, envelope };

void format_line(const Record& record, LineKind kind, std::string& line) {
  switch (kind) {
    case LineKind::record:
      line = record_json(record);
      break;
    case LineKind::data:
      line = record.data;
      break;
    case LineKind::envelope:
      line = R"({"type":"event","topic":)" + json_quote(record.topic) + R"(,"data":)" +
             record.data + "}";
      break;
  }
  line += '\n';
}

// Where formatted lines go. write() and flush() return false once the reader has gone (EPIPE).
class LineOutput {
 public:
  virtual ~LineOutput() = default;
  virtual bool write(const std::string& line) = 0;
  virtual bool flush() = 0;
};

class FileOutput final : public LineOutput {
 public:
  explicit FileOutput(std::FILE* out) : m_out(out) {}
  bool write(const std::string& line) override {
    if (std::fwrite(line.data(), 1, line.size(), m_out) == line.size()) return true;
    return failed();
  }
  bool flush() override { return std::fflush(m_out) == 0 || failed(); }

 private:
  // A closed pipe (`| head`) is the reader's choice, not an error; a full disk is.
  static bool failed() {
    if (errno == EPIPE) return false;
    throw Error(std::string("cannot write the output: ") + std::strerror(errno));
  }
  std::FILE* m_out;
};

// One end of a socket pair: MSG_NOSIGNAL turns a vanished reader into EPIPE even where SIGPIPE
// is not ignored, and a full socket buffer blocks the writer (backpressure from the publisher).
class SocketOutput final : public LineOutput {
 public:
  explicit SocketOutput(int fd) : m_fd(fd) {}
  bool write(const std::string& line) override {
    m_buffer += line;
    return m_buffer.size() < kSocketChunk || flush();
  }
  bool flush() override {
    std::size_t sent = 0;
    while (sent < m_buffer.size()) {
      const ssize_t n = send(m_fd, m_buffer.data() + sent, m_buffer.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return false;  // the publisher has stopped reading
      sent += static_cast<std::size_t>(n);
    }
    m_buffer.clear();
    return true;
  }

 private:
  int m_fd;
  std::string m_buffer;
};

// The loop shared by both outputs: page, pace, format, write. Lines written in a burst are
// pushed out before each wait, so a paced record appears when it is due.
ReplayResult run_replay(RecordSource& source, Pacer& pacer, StopFlag& stop, LineKind kind,
                        LineOutput& output) {
  ReplayResult result;
  const auto finish = [&result](ReplayResult::End end) {
    result.end = end;
    return result;
  };
  std::vector<Record> page;
  std::string line;
  while (!stop.requested() && source.next_page(page)) {
    for (const auto& record : page) {
      if (const std::int64_t delay = pacer.delay_us(record.time_us); delay > 0) {
        if (!output.flush()) return finish(ReplayResult::End::output_closed);
        if (!stop.sleep_for(delay)) return finish(ReplayResult::End::interrupted);
      }
      format_line(record, kind, line);
      if (!output.write(line)) return finish(ReplayResult::End::output_closed);
      ++result.records;
    }
  }
  if (!output.flush()) return finish(ReplayResult::End::output_closed);
  return finish(stop.requested() ? ReplayResult::End::interrupted : ReplayResult::End::done);
}

}  // namespace

// --- FilteredSource

bool FilteredSource::next_page(std::vector<Record>& page) {
  while (m_inner->next_page(page)) {
    std::erase_if(page, [this](const Record& record) {
      return !matches(m_filter, EventFields(record.data));
    });
    if (!page.empty()) return true;  // a page with no match: read on
  }
  return false;
}

// --- Pacer

Pacer::Pacer(double speed, Clock clock) : m_speed(speed), m_clock(std::move(clock)) {}

std::int64_t Pacer::monotonic_now_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}

std::int64_t Pacer::delay_us(std::int64_t record_time_us) {
  if (m_speed <= 0) return 0;
  const std::int64_t now = m_clock();
  if (!m_first_time) {
    m_first_time = record_time_us;
    m_start = now;
    return 0;
  }
  // Each due time is computed from the anchor, never from the previous record, so sleeping a
  // little long (or writing slowly) once does not push every later record back.
  const double offset =
      std::min(static_cast<double>(record_time_us - *m_first_time) / m_speed, kMaxOffsetUs);
  const std::int64_t due = m_start + static_cast<std::int64_t>(offset);
  return std::max<std::int64_t>(0, due - now);
}

// --- StopFlag

void StopFlag::request() {
  {
    std::lock_guard lock(m_mutex);
    m_stop = true;
  }
  m_wake.notify_all();
}

bool StopFlag::requested() const {
  std::lock_guard lock(m_mutex);
  return m_stop;
}

bool StopFlag::sleep_for(std::int64_t us) {
  std::unique_lock lock(m_mutex);
  return !m_wake.wait_for(lock, std::chrono::microseconds(us), [this] { return m_stop; });
}

// --- Outputs

ReplayResult replay_to_file(RecordSource& source, Pacer& pacer, StopFlag& stop, std::FILE* out,
                            ReplayFormat format) {
  FileOutput output(out);
  return run_replay(source, pacer, stop,
                    format == ReplayFormat::data ? LineKind::data : LineKind::record, output);
}

RepublishResult replay_to_server(RecordSource& source, Pacer& pacer, StopFlag& stop,
                                 PublishOptions publish, ClientLoop& loop) {
  // A socket pair rather than a pipe: see SocketOutput.
  int fds[2] = {-1, -1};
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    throw Error(std::string("cannot create a socket pair: ") + std::strerror(errno));
  }
  publish.input_fd = fds[0];
  publish.events.clear();
  RepublishResult result;
  std::thread reader([&] {
    SocketOutput output(fds[1]);
    try {
      result.replay = run_replay(source, pacer, stop, LineKind::envelope, output);
    } catch (const SourceUnreachable& e) {
      result.source_error = e.what();
      result.source_unreachable = true;
    } catch (const std::exception& e) {
      result.source_error = e.what();
    }
    shutdown(fds[1], SHUT_WR);  // end of input for the publisher
  });
  // Once the publisher is done (all acked, unreachable, interrupted, or it threw), the reading
  // side stops too: a send blocked on a full socket fails when the other end is closed.
  const auto stop_reader = [&] {
    stop.request();
    source.interrupt();
    close(fds[0]);
    reader.join();
    close(fds[1]);
  };
  try {
    result.summary = run_publish(publish, loop);
  } catch (...) {
    stop_reader();
    throw;
  }
  stop_reader();
  return result;
}

}  // namespace evstream
