#pragma once
// Reads newline-delimited text from a file descriptor on its own thread (stdin may be a pipe, a
// file or a terminal, and lws cannot poll regular files), handing complete lines to the loop
// thread through a bounded queue: when the loop falls behind, the reader waits instead of
// buffering the whole input.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace evstream {

struct Line {
  std::uint64_t number = 0;  // 1-based
  std::string text;          // without the trailing newline (and without a trailing '\r')
};

class LineReader {
 public:
  // `notify` runs on the reader thread whenever lines (or EOF) become available after the queue
  // was empty; it should only wake the consumer (ClientLoop::wake).
  LineReader(int fd, std::function<void()> notify, std::size_t max_queued_lines = 8192);
  ~LineReader();  // stops the thread even if it is blocked on a read
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // Moves every queued line into `out`; returns true once the input has ended and all its lines
  // have been taken.
  bool take(std::vector<Line>& out);
  std::string error() const;  // a read error, if the input ended by one

 private:
  void run();
  void push(std::string text);
  int m_fd;
  std::function<void()> m_notify;
  std::size_t m_max_queued;
  int m_cancel_pipe[2] = {-1, -1};
  mutable std::mutex m_mutex;
  std::condition_variable m_space;
  std::vector<Line> m_queue;
  std::uint64_t m_line_number = 0;
  bool m_eof = false;
  std::atomic<bool> m_cancelled{false};
  std::string m_error;
  std::thread m_thread;
};

}  // namespace evstream
