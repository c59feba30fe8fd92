#pragma once
// SIGINT/SIGTERM handling for long-running subcommands, following the lws rule that only
// lws_cancel_service is thread-safe: the signals are blocked in every thread (call
// block_stop_signals() before starting any) and one watcher thread waits for them with sigwait()
// and runs the given callback, which only sets flags and wakes a loop.
#include <functional>
#include <thread>

namespace evstream {

// Blocks SIGINT, SIGTERM and SIGPIPE in the calling thread; threads started later inherit it.
void block_stop_signals();

class StopSignalWatcher {
 public:
  explicit StopSignalWatcher(std::function<void(int signal)> on_signal);
  ~StopSignalWatcher();  // wakes and joins the watcher thread
  StopSignalWatcher(const StopSignalWatcher&) = delete;
  StopSignalWatcher& operator=(const StopSignalWatcher&) = delete;

 private:
  std::function<void(int)> m_on_signal;
  std::thread m_thread;
};

}  // namespace evstream
