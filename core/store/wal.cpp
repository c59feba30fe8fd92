#include "core/store/wal.hpp"

#include <sqlite3.h>

namespace evstream {

namespace {
int call_wal_listener(void* listener, sqlite3*, const char*, int wal_pages) {
  (*static_cast<std::function<void(int)>*>(listener))(wal_pages);
  return SQLITE_OK;
}
}  // namespace

void Store::on_wal_commit(std::function<void(int wal_pages)> listener) {
  m_wal_listener = std::make_unique<std::function<void(int)>>(std::move(listener));
  sqlite3_wal_hook(m_db, call_wal_listener, m_wal_listener.get());
}

bool Store::checkpoint() {
  return sqlite3_wal_checkpoint_v2(m_db, "main", SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr) ==
         SQLITE_OK;
}

WalCheckpointer::WalCheckpointer(const std::string& path, Durability durability,
                                 int threshold_pages)
    : m_store(path, Store::Mode::read_write, durability),
      m_threshold_pages(threshold_pages),
      m_thread([this] { run(); }) {}

WalCheckpointer::~WalCheckpointer() {
  {
    std::lock_guard lock(m_mutex);
    m_stopping = true;
  }
  m_wake.notify_one();
  m_thread.join();
}

void WalCheckpointer::watch(Store& writer) {
  writer.on_wal_commit([this](int wal_pages) { wal_grew(wal_pages); });
}

void WalCheckpointer::wal_grew(int wal_pages) {
  if (wal_pages < m_threshold_pages) return;
  {
    std::lock_guard lock(m_mutex);
    if (m_requested) return;
    m_requested = true;
  }
  m_wake.notify_one();
}

std::uint64_t WalCheckpointer::checkpoints() const {
  std::lock_guard lock(m_mutex);
  return m_checkpoints;
}

void WalCheckpointer::run() {
  std::unique_lock lock(m_mutex);
  for (;;) {
    m_wake.wait(lock, [this] { return m_requested || m_stopping; });
    if (m_stopping) return;
    m_requested = false;  // commits during this checkpoint ask for the next one
    lock.unlock();
    // A failed checkpoint (a reader holding an old snapshot, a full disk) leaves the WAL to grow
    // until the next request; the writer reports its own errors.
    const bool done = m_store.checkpoint();
    lock.lock();
    if (done) ++m_checkpoints;
  }
}

}  // namespace evstream
