// Batched append throughput through StoreWriter (group commit, batches of 1024) into a temp-file
// database, for 256 B and 1 KiB events at durability normal and full. Prints one JSON line per
// case. Usage: store_append [--events N] [--dir DIR]; DIR defaults to $TMPDIR or /tmp and should
// be on the disk you care about (a tmpfs /tmp makes `full` look free: there is no fsync to pay).
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>

#include "core/store/writer.hpp"

namespace {

using namespace evstream;
using Clock = std::chrono::steady_clock;

struct Options {
  std::size_t events = 200'000;
  std::string dir;
};

struct Case {
  std::size_t size;
  Durability durability;
};

// Counts notify calls so the submitting thread can sleep until the next batch is committed.
class BatchWaiter {
 public:
  void notify() {
    {
      std::lock_guard lock(m_mutex);
      ++m_calls;
    }
    m_changed.notify_one();
  }
  std::uint64_t calls() {
    std::lock_guard lock(m_mutex);
    return m_calls;
  }
  void wait_past(std::uint64_t seen) {
    std::unique_lock lock(m_mutex);
    if (!m_changed.wait_for(lock, std::chrono::seconds(60), [&] { return m_calls > seen; })) {
      throw std::runtime_error("no batch committed within 60 s");
    }
  }

 private:
  std::mutex m_mutex;
  std::condition_variable m_changed;
  std::uint64_t m_calls = 0;
};

// A compact JSON object of exactly `size` bytes (for sizes above ~30).
std::string payload(std::size_t size, std::size_t seq) {
  std::string text = "{\"seq\":" + std::to_string(seq) + ",\"pad\":\"";
  const std::size_t used = text.size() + 2;
  text.append(size > used ? size - used : 0, 'x');
  return text + "\"}";
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// A directory made for this run and removed with its contents, also when a case fails.
class TempDir {
 public:
  explicit TempDir(const std::string& parent) {
    std::string dir = (std::filesystem::path(parent) / "evstream-bench-XXXXXX").string();
    if (!mkdtemp(dir.data())) throw std::runtime_error("cannot create a temp dir in " + parent);
    m_path = dir;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(m_path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return m_path; }

 private:
  std::string m_path;
};

void remove_db(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
}

// Submits `events` events as fast as the queue takes them and returns the seconds until the last
// one is committed.
double run_case(const std::string& path, const Case& c, std::size_t events) {
  remove_db(path);
  BatchWaiter waiter;
  StoreWriterOptions options;
  options.max_batch_events = 1024;
  StoreWriter writer(Store(path, Store::Mode::read_write, c.durability), options,
                     [&waiter] { waiter.notify(); });
  const auto start = Clock::now();
  std::size_t submitted = 0;
  std::size_t committed = 0;
  while (committed < events) {
    const auto seen = waiter.calls();
    while (submitted < events &&
           writer.submit(NewEvent{"bench", payload(c.size, submitted), {}, now_unix_us()},
                         submitted) == StoreWriter::SubmitResult::ok) {
      ++submitted;
    }
    for (const auto& done : writer.take_committed()) {
      if (done.error) throw std::runtime_error(*done.error);
      ++committed;
    }
    if (committed < events) waiter.wait_past(seen);
  }
  const std::chrono::duration<double> elapsed = Clock::now() - start;
  return elapsed.count();
}

Options parse_args(int argc, char** argv) {
  Options options;
  const char* tmp = std::getenv("TMPDIR");
  options.dir = tmp && *tmp ? tmp : "/tmp";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (flag == "--events") {
      options.events = std::stoul(argv[i + 1]);
    } else if (flag == "--dir") {
      options.dir = argv[i + 1];
    } else {
      throw std::runtime_error("usage: store_append [--events N] [--dir DIR]");
    }
  }
  if (argc % 2 == 0) throw std::runtime_error("usage: store_append [--events N] [--dir DIR]");
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options options = parse_args(argc, argv);
    const TempDir dir(options.dir);
    const std::string path = dir.path() + "/bench.db";
    for (const Case c : {Case{256, Durability::normal}, Case{256, Durability::full},
                         Case{1024, Durability::normal}, Case{1024, Durability::full}}) {
      const double seconds = run_case(path, c, options.events);
      std::printf(
          "{\"bench\":\"store_append\",\"size\":%zu,\"durability\":\"%s\",\"events\":%zu,"
          "\"seconds\":%.3f,\"events_per_s\":%.0f,\"date\":\"%s\"}\n",
          c.size, c.durability == Durability::full ? "full" : "normal", options.events, seconds,
          static_cast<double>(options.events) / seconds, utc_now().c_str());
      std::fflush(stdout);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "store_append: error: %s\n", e.what());
    return 1;
  }
}
