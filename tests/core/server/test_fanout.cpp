#include "core/server/fanout.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "core/store/writer.hpp"

namespace {

using namespace evstream;
using namespace std::chrono_literals;

// A service thread stand-in: waits for its inbox's wake-up, then takes what the inbox holds.
class Consumer {
 public:
  Consumer() : m_inbox([this] { wake(); }) {}
  Inbox& inbox() { return m_inbox; }

  // Takes hand-offs until `done` says so or 10 s pass.
  template <typename Done>
  void run(Done done) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      {
        std::unique_lock lock(m_mutex);
        m_changed.wait_until(lock, deadline, [this] { return m_woken; });
        m_woken = false;
      }
      for (auto& handoff : m_inbox.take()) handoffs.push_back(std::move(handoff));
    }
  }
  int wakes() {
    std::lock_guard lock(m_mutex);
    return m_wakes;
  }

  std::vector<Handoff> handoffs;

 private:
  void wake() {
    std::lock_guard lock(m_mutex);
    m_woken = true;
    ++m_wakes;
    m_changed.notify_all();
  }
  std::mutex m_mutex;
  std::condition_variable m_changed;
  bool m_woken = false;
  int m_wakes = 0;
  Inbox m_inbox;
};

NewEvent event_numbered(std::size_t thread, std::size_t n) {
  return NewEvent{"t" + std::to_string(thread),
                  "{\"thread\":" + std::to_string(thread) + ",\"n\":" + std::to_string(n) + "}",
                  std::nullopt, now_unix_us()};
}

}  // namespace

TEST_CASE("fanout: connection ids interleave and name their thread") {
  CHECK(connection_id(0, 1, 0) == 1);
  CHECK(connection_id(0, 1, 41) == 42);
  CHECK(owner_of(42, 1) == 0u);
  for (std::size_t thread = 0; thread < 3; ++thread) {
    for (std::uint64_t n = 0; n < 5; ++n) {
      const std::uint64_t id = connection_id(thread, 3, n);
      CHECK(owner_of(id, 3) == thread);
      CHECK(owner_of(id | kHttpTagBit, 3) == thread);
    }
  }
  CHECK(connection_id(0, 3, 1) == 4);
  CHECK(connection_id(2, 3, 0) == 3);
  CHECK_FALSE(owner_of(0, 3).has_value());  // a replica's event: nobody waits for it
}

TEST_CASE("fanout: an inbox wakes its owner once per burst") {
  Consumer consumer;
  consumer.inbox().push(Handoff{});
  consumer.inbox().push(Handoff{});
  CHECK(consumer.wakes() == 1);
  CHECK_FALSE(consumer.inbox().empty());
  CHECK(consumer.inbox().take().size() == 2);
  CHECK(consumer.inbox().empty());
  consumer.inbox().push(Handoff{});
  CHECK(consumer.wakes() == 2);
}

// Three publishing threads submit through one store writer; three service threads each receive
// every stored event once, in id order, as the same shared frames, and only the replies of their
// own connections, each after the broadcast of its event. Runs under `make tsan`.
TEST_CASE("fanout: every thread gets every event once in order and its own replies") {
  constexpr std::size_t kThreads = 3;
  constexpr std::size_t kPerThread = 400;
  constexpr std::size_t kTotal = kThreads * kPerThread;
  Logger log(LogLevel::off);
  Fanout fanout(log, 0);
  std::vector<Consumer> consumers(kThreads);
  StoreWriterOptions options;
  options.max_batch_events = 16;  // many batches, so hand-offs interleave with submits
  StoreWriter writer(Store(":memory:"), options, [&fanout] { fanout.pump(); });
  std::vector<Inbox*> inboxes;
  for (auto& consumer : consumers) inboxes.push_back(&consumer.inbox());
  fanout.start(writer, nullptr, inboxes);

  std::vector<std::thread> threads;
  std::atomic<std::size_t> submitted{0};
  for (std::size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (std::size_t n = 0; n < kPerThread; ++n) {
        while (writer.submit(event_numbered(t, n), connection_id(t, kThreads, n)) !=
               StoreWriter::SubmitResult::ok) {
          std::this_thread::yield();
        }
        ++submitted;
      }
    });
  }
  std::vector<std::vector<EventId>> ids(kThreads);
  std::vector<std::vector<const Frame*>> frames(kThreads);
  std::vector<std::vector<PublishReply>> replies(kThreads);
  std::vector<std::thread> services;
  for (std::size_t t = 0; t < kThreads; ++t) {
    services.emplace_back([&, t] {
      std::size_t seen_handoffs = 0;
      consumers[t].run([&] {
        auto& handoffs = consumers[t].handoffs;
        for (; seen_handoffs < handoffs.size(); ++seen_handoffs) {
          const Handoff& handoff = handoffs[seen_handoffs];
          if (handoff.broadcasts) {
            for (const Broadcast& event : *handoff.broadcasts) {
              ids[t].push_back(event.record.id);
              frames[t].push_back(event.frame.get());
            }
          }
          for (const PublishReply& reply : handoff.replies) replies[t].push_back(reply);
        }
        return ids[t].size() >= kTotal && replies[t].size() >= kPerThread;
      });
    });
  }
  for (auto& thread : threads) thread.join();
  for (auto& service : services) service.join();
  fanout.stop();
  writer.close();

  CHECK(submitted == kTotal);
  CHECK(fanout.head() == static_cast<EventId>(kTotal));
  CHECK(fanout.stats().events_in == kTotal);
  for (std::size_t t = 0; t < kThreads; ++t) {
    CAPTURE(t);
    REQUIRE(ids[t].size() == kTotal);
    for (std::size_t i = 0; i < kTotal; ++i) REQUIRE(ids[t][i] == static_cast<EventId>(i + 1));
    CHECK(frames[t] == frames[0]);  // encoded once, shared
    REQUIRE(replies[t].size() == kPerThread);
    std::uint64_t previous = 0;
    for (const PublishReply& reply : replies[t]) {
      CHECK(owner_of(reply.tag, kThreads) == t);
      CHECK(reply.tag > previous);  // this thread's publishes, in the order they were submitted
      previous = reply.tag;
      CHECK_FALSE(reply.error.has_value());
      CHECK(reply.result.id >= 1);
    }
  }
  // The record travels with its frame (subscriptions filter on its topic and data).
  const Handoff& first = consumers[0].handoffs.front();
  REQUIRE(first.broadcasts);
  const Broadcast& event = first.broadcasts->front();
  CHECK(frame_payload(*event.frame).find(event.record.data) != std::string_view::npos);
}

TEST_CASE("fanout: nothing is handed out before start or after stop") {
  Logger log(LogLevel::off);
  Fanout fanout(log, 7);
  Consumer consumer;
  fanout.pump();
  CHECK(consumer.inbox().empty());
  CHECK(fanout.drained());
  CHECK(fanout.head() == 7);
  StoreWriter writer(Store(":memory:"), {}, [&fanout] { fanout.pump(); });
  fanout.start(writer, nullptr, {&consumer.inbox()});
  REQUIRE(writer.submit(event_numbered(0, 0), 1) == StoreWriter::SubmitResult::ok);
  consumer.run([&] { return !consumer.handoffs.empty(); });
  REQUIRE(consumer.handoffs.size() == 1);
  REQUIRE(consumer.handoffs[0].replies.size() == 1);
  CHECK(consumer.handoffs[0].replies[0].result.id == 1);
  CHECK(fanout.drained());
  fanout.stop();
  REQUIRE(writer.submit(event_numbered(0, 1), 1) == StoreWriter::SubmitResult::ok);
  writer.close();
  fanout.pump();
  CHECK(consumer.inbox().empty());
}
