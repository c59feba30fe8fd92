#include <doctest/doctest.h>

#include <vector>

#include "core/server/hub.hpp"
#include "core/wire/protocol.hpp"

using namespace evstream;

namespace {

struct RecordingSink : HubSink {
  std::vector<std::uint64_t> woken;
  std::vector<std::uint64_t> overflowed_ids;
  void wake(Subscriber& s) override { woken.push_back(s.id); }
  void overflowed(Subscriber& s) override { overflowed_ids.push_back(s.id); }
};

std::vector<EventId> drain_ids(Subscriber& s) {
  std::vector<EventId> ids;
  while (!s.queue.empty()) {
    auto message = decode_server_message(frame_payload(*s.queue.front()));
    if (message && message->type == ServerMessage::Type::event) ids.push_back(*message->id);
    s.queue.pop();
  }
  return ids;
}

Record record(EventId id, std::string topic) {
  return Record{id, std::move(topic), 0, "{}"};
}

std::vector<EventId> append_events(Store& store, int n, const std::string& topic) {
  std::vector<NewEvent> batch;
  for (int i = 0; i < n; ++i)
    batch.push_back(NewEvent{topic, "{\"i\":" + std::to_string(i) + "}", {}, i});
  std::vector<EventId> ids;
  for (const auto& r : store.append(batch)) ids.push_back(r.id);
  return ids;
}

}  // namespace

TEST_CASE("hub::publish") {
  Store store(":memory:");
  RecordingSink sink;
  Hub hub(QueueLimits{4, 1 << 20}, sink);
  Subscriber all;
  all.id = 1;
  Subscriber cams;
  cams.id = 2;
  cams.topics = {"cams"};
  hub.catch_up(all, store, 0);  // cursor == head: joins without reading
  hub.catch_up(cams, store, 0);
  REQUIRE(hub.live_count() == 2);

  SUBCASE("one shared frame per event, filtered by topic") {
    const auto frame = make_text_frame(encode_event(record(1, "cams")));
    hub.publish(record(1, "cams"), frame);
    hub.publish(record(2, "other"), make_text_frame(encode_event(record(2, "other"))));
    CHECK(all.queue.size() == 2);
    CHECK(cams.queue.size() == 1);
    CHECK(all.queue.front().get() == cams.queue.front().get());  // the same bytes, shared
    CHECK(sink.woken == std::vector<std::uint64_t>{1, 2});       // woken once, when queues filled
  }
  SUBCASE("a subscriber past its bound is dropped, the others keep going") {
    for (EventId id = 1; id <= 5; ++id) {
      hub.publish(record(id, "other"), make_text_frame(encode_event(record(id, "other"))));
    }
    CHECK(sink.overflowed_ids == std::vector<std::uint64_t>{1});
    CHECK(all.overflowed);
    CHECK(all.queue.empty());
    CHECK(hub.live_count() == 1);
    CHECK(hub.slow_consumers() == 1);
    hub.publish(record(6, "cams"), make_text_frame(encode_event(record(6, "cams"))));
    CHECK(drain_ids(cams) == std::vector<EventId>{6});
  }
  SUBCASE("byte bound, but an empty queue always takes one frame") {
    RecordingSink small_sink;
    Hub small(QueueLimits{100, 10}, small_sink);
    Subscriber s;
    s.id = 3;
    small.catch_up(s, store, 0);
    small.publish(record(1, "t"), make_text_frame(std::string(50, 'x')));
    CHECK(s.queue.size() == 1);
    small.publish(record(2, "t"), make_text_frame("y"));
    CHECK(small_sink.overflowed_ids == std::vector<std::uint64_t>{3});
  }
  SUBCASE("a cursor ahead of the broadcasts skips what it already has") {
    // since=3 on a thread that has broadcast up to 0 only: live at once, 1..3 come later here.
    Subscriber ahead;
    ahead.id = 4;
    ahead.cursor = 3;
    hub.catch_up(ahead, store, 0);
    REQUIRE(ahead.live);
    for (EventId id = 1; id <= 4; ++id) {
      hub.publish(record(id, "cams"), make_text_frame(encode_event(record(id, "cams"))));
    }
    CHECK(drain_ids(ahead) == std::vector<EventId>{4});
    CHECK(drain_ids(cams) == std::vector<EventId>{1, 2, 3, 4});
  }
  SUBCASE("remove leaves the live list") {
    hub.remove(all);
    hub.remove(all);
    CHECK(hub.live_count() == 1);
    hub.publish(record(1, "cams"), make_text_frame("x"));
    CHECK(all.queue.empty());
  }
}

TEST_CASE("hub::catch_up") {
  Store store(":memory:");
  const auto ids = append_events(store, 600, "a");
  append_events(store, 10, "b");
  const EventId head = store.last_id();
  RecordingSink sink;
  Hub hub(QueueLimits{4096, 64 << 20}, sink);

  SUBCASE("pages from the cursor to head, then joins live with no gap or duplicate") {
    Subscriber s;
    s.id = 1;
    s.cursor = 100;
    std::vector<EventId> received;
    for (int round = 0; round < 10 && !s.live; ++round) {
      hub.catch_up(s, store, head);
      for (auto id : drain_ids(s)) received.push_back(id);
    }
    REQUIRE(s.live);
    hub.publish(record(head + 1, "a"), make_text_frame(encode_event(record(head + 1, "a"))));
    for (auto id : drain_ids(s)) received.push_back(id);
    REQUIRE(received.size() == static_cast<std::size_t>(head + 1 - 100));
    for (std::size_t i = 0; i < received.size(); ++i)
      CHECK(received[i] == 101 + static_cast<EventId>(i));
  }
  SUBCASE("events past head are left to the live feed") {
    Subscriber s;
    s.cursor = ids[589];
    hub.catch_up(s, store, ids[594]);
    CHECK(s.live);
    CHECK(drain_ids(s) == std::vector<EventId>{ids[590], ids[591], ids[592], ids[593], ids[594]});
  }
  SUBCASE("topic filter") {
    Subscriber s;
    s.topics = {"b"};
    s.cursor = 0;
    hub.catch_up(s, store, head);
    CHECK(s.live);
    CHECK(drain_ids(s).size() == 10);
  }
  SUBCASE("last=N over a topic filter walks back a page per call, then catches up") {
    auto last_n = [&](std::vector<std::string> topics, std::int64_t n, int& calls) {
      Subscriber s;
      s.topics = std::move(topics);
      Hub::seek_last(s, n, head);
      std::vector<EventId> received;
      for (calls = 0; calls < 20 && !s.live; ++calls) {
        hub.catch_up(s, store, head);
        for (auto id : drain_ids(s)) received.push_back(id);
      }
      CHECK(s.live);
      return received;
    };
    int calls = 0;
    std::vector<EventId> expected;
    for (EventId id = 301; id <= 600; ++id) expected.push_back(id);  // topic a is ids 1..600
    CHECK(last_n({"a"}, 300, calls) == expected);
    CHECK(calls == 4);  // back 256, back 44, then forward 256 and 44
    expected.clear();
    for (EventId id = 596; id <= 610; ++id) expected.push_back(id);  // b is 601..610
    CHECK(last_n({"a", "b"}, 15, calls) == expected);
    expected.clear();
    for (EventId id = 601; id <= 610; ++id) expected.push_back(id);
    CHECK(last_n({"b"}, 50, calls) == expected);  // fewer than N stored: all of them
    CHECK(last_n({"b"}, 0, calls).empty());
    CHECK(last_n({"nope"}, 5, calls).empty());
  }
  SUBCASE("one page at a time, bounded by half the queue") {
    Hub small(QueueLimits{100, 64 << 20}, sink);
    Subscriber s;
    s.cursor = 0;
    small.catch_up(s, store, head);
    CHECK_FALSE(s.live);
    CHECK(s.queue.size() == 50);
    small.catch_up(s, store, head);
    CHECK(s.queue.size() == 50);  // full to half: waits for the queue to drain
  }
}
