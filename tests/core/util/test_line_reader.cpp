#include <doctest/doctest.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "core/util/line_reader.hpp"

using namespace evstream;

namespace {
struct Signal {
  std::mutex mutex;
  std::condition_variable cv;
  int count = 0;
  void notify() {
    std::lock_guard lock(mutex);
    ++count;
    cv.notify_all();
  }
};

// Takes lines until EOF, waiting for notifications with a deadline.
std::vector<Line> read_all(LineReader& reader, Signal& signal) {
  std::vector<Line> lines;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    int seen = 0;
    {
      std::lock_guard lock(signal.mutex);
      seen = signal.count;  // before take(): a notification after it must not be missed
    }
    if (reader.take(lines)) return lines;
    std::unique_lock lock(signal.mutex);
    if (!signal.cv.wait_until(lock, deadline, [&] { return signal.count != seen; })) return lines;
  }
}
}  // namespace

TEST_CASE("line_reader::LineReader") {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  Signal signal;
  SUBCASE("splits lines across reads, strips CR, keeps a last line without newline") {
    LineReader reader(
        fds[0], [&] { signal.notify(); }, 4);
    const std::string input = "one\r\ntwo\n\nthree";
    REQUIRE(write(fds[1], input.data(), 2) == 2);
    REQUIRE(write(fds[1], input.data() + 2, input.size() - 2) ==
            static_cast<ssize_t>(input.size() - 2));
    close(fds[1]);
    const auto lines = read_all(reader, signal);
    REQUIRE(lines.size() == 4);
    CHECK(lines[0].text == "one");
    CHECK(lines[0].number == 1);
    CHECK(lines[2].text == "");
    CHECK(lines[3].text == "three");
    CHECK(lines[3].number == 4);
  }
  SUBCASE("more lines than the queue holds still all arrive, in order") {
    LineReader reader(
        fds[0], [&] { signal.notify(); }, 8);
    std::string input;
    for (int i = 0; i < 1000; ++i) input += std::to_string(i) + "\n";
    std::thread writer([&] {
      [[maybe_unused]] auto n = write(fds[1], input.data(), input.size());
      close(fds[1]);
    });
    const auto lines = read_all(reader, signal);
    writer.join();
    REQUIRE(lines.size() == 1000);
    for (int i = 0; i < 1000; ++i)
      CHECK(lines[static_cast<std::size_t>(i)].text == std::to_string(i));
  }
  SUBCASE("the destructor stops a reader blocked on an open pipe") {
    {
      LineReader reader(fds[0], [] {});
    }
    close(fds[1]);
    CHECK(true);
  }
  close(fds[0]);
}
