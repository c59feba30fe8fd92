#include "core/util/line_reader.hpp"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/util/error.hpp"

namespace evstream {

LineReader::LineReader(int fd, std::function<void()> notify, std::size_t max_queued_lines)
    : m_fd(fd), m_notify(std::move(notify)), m_max_queued(max_queued_lines) {
  if (pipe(m_cancel_pipe) != 0)
    throw Error(std::string("cannot create a pipe: ") + strerror(errno));
  m_thread = std::thread([this] { run(); });
}

LineReader::~LineReader() {
  {
    std::lock_guard lock(m_mutex);
    m_cancelled = true;
  }
  m_space.notify_all();
  [[maybe_unused]] auto written = write(m_cancel_pipe[1], "x", 1);
  m_thread.join();
  close(m_cancel_pipe[0]);
  close(m_cancel_pipe[1]);
}

bool LineReader::take(std::vector<Line>& out) {
  std::lock_guard lock(m_mutex);
  for (auto& line : m_queue) out.push_back(std::move(line));
  m_queue.clear();
  m_space.notify_all();
  return m_eof;
}

std::string LineReader::error() const {
  std::lock_guard lock(m_mutex);
  return m_error;
}

void LineReader::push(std::string text) {
  if (!text.empty() && text.back() == '\r') text.pop_back();
  bool was_empty = false;
  {
    std::unique_lock lock(m_mutex);
    m_space.wait(lock, [this] { return m_queue.size() < m_max_queued || m_cancelled; });
    was_empty = m_queue.empty();
    m_queue.push_back(Line{++m_line_number, std::move(text)});
  }
  if (was_empty) m_notify();
}

void LineReader::run() {
  std::string pending;
  char buf[65536];
  for (;;) {
    pollfd fds[2] = {{m_fd, POLLIN, 0}, {m_cancel_pipe[0], POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents != 0) return;  // cancelled
    const ssize_t n = read(m_fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) {
      if (n < 0) {
        std::lock_guard lock(m_mutex);
        m_error = strerror(errno);
      }
      break;
    }
    std::size_t start = 0;
    for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
      if (buf[i] != '\n') continue;
      pending.append(buf + start, i - start);
      push(std::move(pending));
      pending.clear();
      start = i + 1;
      if (m_cancelled) return;
    }
    pending.append(buf + start, static_cast<std::size_t>(n) - start);
  }
  if (!pending.empty()) push(std::move(pending));
  {
    std::lock_guard lock(m_mutex);
    m_eof = true;
  }
  m_notify();
}

}  // namespace evstream
