#include <doctest/doctest.h>

#include "core/wire/frame.hpp"

using namespace evstream;

TEST_CASE("frame::make_text_frame") {
  SUBCASE("short payload: 2-byte header") {
    const auto frame = make_text_frame("hi");
    CHECK(frame->bytes == std::string("\x81\x02hi", 4));
    CHECK(frame_payload(*frame) == "hi");
  }
  SUBCASE("126..65535 bytes: 16-bit length") {
    const std::string payload(300, 'x');
    const auto frame = make_text_frame(payload);
    CHECK(frame->size() == 304);
    CHECK(static_cast<unsigned char>(frame->bytes[1]) == 126);
    CHECK(static_cast<unsigned char>(frame->bytes[2]) == 1);
    CHECK(static_cast<unsigned char>(frame->bytes[3]) == 44);
    CHECK(frame_payload(*frame) == payload);
  }
  SUBCASE("larger: 64-bit length") {
    const std::string payload(70000, 'y');
    const auto frame = make_text_frame(payload);
    CHECK(frame->size() == 70010);
    CHECK(static_cast<unsigned char>(frame->bytes[1]) == 127);
    CHECK(frame_payload(*frame) == payload);
  }
}

TEST_CASE("frame::FrameQueue") {
  FrameQueue queue;
  SUBCASE("FIFO with a byte count") {
    CHECK(queue.empty());
    queue.push(make_text_frame("a"));
    queue.push(make_text_frame("bb"));
    CHECK(queue.size() == 2);
    CHECK(queue.bytes() == 7);
    CHECK(frame_payload(*queue.front()) == "a");
    queue.pop();
    CHECK(frame_payload(*queue.front()) == "bb");
    CHECK(queue.bytes() == 4);
    queue.pop();
    CHECK(queue.empty());
    CHECK(queue.bytes() == 0);
  }
  SUBCASE("placeholders hold the order of replies not known yet") {
    queue.push_placeholder();
    queue.push(make_text_frame("error"));
    queue.push_placeholder();
    CHECK_FALSE(queue.front_ready());
    CHECK(queue.fill_placeholder(make_text_frame("ack1")));
    CHECK(queue.front_ready());
    CHECK(frame_payload(*queue.front()) == "ack1");
    queue.pop();
    CHECK(frame_payload(*queue.front()) == "error");
    queue.pop();
    CHECK_FALSE(queue.front_ready());
    CHECK(queue.fill_placeholder(make_text_frame("ack2")));
    CHECK_FALSE(queue.fill_placeholder(make_text_frame("none")));
    CHECK(frame_payload(*queue.front()) == "ack2");
  }
  SUBCASE("cut_at_placeholder drops the first unanswered reply and all after it") {
    queue.push(make_text_frame("ack1"));
    queue.push_placeholder();
    queue.push(make_text_frame("error"));
    queue.push_placeholder();
    const auto kept = queue.front()->size();
    CHECK(queue.cut_at_placeholder() == 3);
    CHECK(queue.size() == 1);
    CHECK(queue.bytes() == kept);
    CHECK(frame_payload(*queue.front()) == "ack1");
    CHECK_FALSE(queue.fill_placeholder(make_text_frame("late")));
    CHECK(queue.cut_at_placeholder() == 0);
    queue.pop();
    CHECK(queue.empty());
    queue.push_placeholder();
    CHECK(queue.cut_at_placeholder() == 1);
    CHECK(queue.empty());
  }
  SUBCASE("long runs keep order across compaction") {
    for (int round = 0; round < 3; ++round) {
      for (int i = 0; i < 500; ++i) queue.push(make_text_frame(std::to_string(i)));
      for (int i = 0; i < 500; ++i) {
        REQUIRE(frame_payload(*queue.front()) == std::to_string(i));
        queue.pop();
      }
      CHECK(queue.empty());
    }
  }
  SUBCASE("clear drops everything") {
    queue.push(make_text_frame("x"));
    queue.clear();
    CHECK(queue.empty());
    CHECK(queue.bytes() == 0);
  }
}
