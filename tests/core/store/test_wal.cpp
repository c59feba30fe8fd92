#include "core/store/wal.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <thread>
#include <vector>

#include "tests/core/temp_dir.hpp"

namespace {

using namespace evstream;
using evstream::testing::TempDir;

NewEvent small_event(int n) {
  NewEvent event;
  event.topic = "t";
  event.data = R"({"n":)" + std::to_string(n) + "}";
  event.time_us = 1'000'000 + n;
  return event;
}

void append_one_by_one(Store& store, int from, int count) {
  for (int n = from; n < from + count; ++n) {
    const NewEvent event = small_event(n);
    store.append(std::span(&event, 1));
  }
}

}  // namespace

TEST_CASE("with a WAL listener the writer's commits never checkpoint") {
  TempDir dir;
  Store store(dir.file("wal.db"));
  std::vector<int> reported;
  store.on_wal_commit([&reported](int pages) { reported.push_back(pages); });
  append_one_by_one(store, 0, 400);  // several pages per commit: well past SQLite's 1000
  REQUIRE(reported.size() == 400);
  CHECK(reported.back() > 1000);
  for (std::size_t i = 1; i < reported.size(); ++i) {
    CHECK(reported[i] > reported[i - 1]);  // never reset by an automatic checkpoint
  }
}

TEST_CASE("WalCheckpointer checkpoints on its own thread and the WAL starts over") {
  TempDir dir;
  const std::string path = dir.file("wal.db");
  WalCheckpointer checkpointer(path, Durability::normal, 50);
  Store writer(path);
  std::vector<int> reported;
  writer.on_wal_commit([&](int pages) { reported.push_back(pages); });
  append_one_by_one(writer, 0, 40);
  checkpointer.wal_grew(reported.back());  // once, after the last commit: nothing races it
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (checkpointer.checkpoints() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  REQUIRE(checkpointer.checkpoints() == 1);
  const int before = reported.back();
  CHECK(before >= 50);
  append_one_by_one(writer, 40, 1);
  CHECK(reported.back() < before);  // everything was copied back, so the next commit rewound it

  Store reader(path, Store::Mode::read_only);
  CHECK(reader.stats().events == 41);
}

TEST_CASE("watch routes the writer's commits to the checkpointer") {
  TempDir dir;
  const std::string path = dir.file("wal.db");
  WalCheckpointer checkpointer(path, Durability::full, 20);
  Store writer(path, Store::Mode::read_write, Durability::full);
  checkpointer.watch(writer);
  append_one_by_one(writer, 0, 20);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (checkpointer.checkpoints() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CHECK(checkpointer.checkpoints() >= 1);
}
