#include "core/util/signals.hpp"

#include <pthread.h>
#include <signal.h>

namespace evstream {

namespace {
// The watcher's own wake-up: sent by the destructor to end sigwait().
constexpr int kWakeSignal = SIGUSR1;

sigset_t watched_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, kWakeSignal);
  return set;
}
}  // namespace

void block_stop_signals() {
  sigset_t set = watched_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  // A peer that vanishes mid-write must give EPIPE, not kill the process.
  signal(SIGPIPE, SIG_IGN);
}

StopSignalWatcher::StopSignalWatcher(std::function<void(int)> on_signal)
    : m_on_signal(std::move(on_signal)) {
  m_thread = std::thread([this] {
    const sigset_t set = watched_signals();
    for (;;) {
      int signal = 0;
      if (sigwait(&set, &signal) != 0 || signal == kWakeSignal) return;
      m_on_signal(signal);
    }
  });
}

StopSignalWatcher::~StopSignalWatcher() {
  pthread_kill(m_thread.native_handle(), kWakeSignal);
  m_thread.join();
}

}  // namespace evstream
