#pragma once
// Checkpoints the store's WAL on a thread of its own, so no commit waits for one (see
// Store::on_wal_commit). The writer's connection reports the WAL size after each commit; past
// `threshold_pages` this thread runs a PASSIVE checkpoint through its own connection, which copies
// the WAL into the database while the writer keeps appending.
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "core/store/store.hpp"

namespace evstream {

class WalCheckpointer {
 public:
  // Opens its own connection to the database at `path` (throws evstream::Error when it cannot).
  WalCheckpointer(const std::string& path, Durability durability, int threshold_pages = 1000);
  ~WalCheckpointer();  // finishes a checkpoint in progress, then joins
  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;

  // Thread-safe and cheap: called by the writer after each commit.
  void wal_grew(int wal_pages);
  // Routes `writer`'s commits here; this object must outlive the writer's connection.
  void watch(Store& writer);
  std::uint64_t checkpoints() const;

 private:
  void run();

  Store m_store;
  const int m_threshold_pages;
  mutable std::mutex m_mutex;
  std::condition_variable m_wake;
  bool m_requested = false;
  bool m_stopping = false;
  std::uint64_t m_checkpoints = 0;
  std::thread m_thread;  // last: starts once everything above exists
};

}  // namespace evstream
