// Fuzz target: every WebSocket message decoder (core/wire/protocol.hpp). A publish frame
// (envelope or bare object) and a subscriber's message arrive at serve from the network; a
// server frame arrives at tail, publish and loadtest from the network.
#include <string>
#include <variant>

#include "core/wire/json_text.hpp"
#include "core/wire/protocol.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

using namespace evstream;

bool within(std::string_view part, std::string_view whole) {
  return part.empty() ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

void check_publish(std::string_view text) {
  const auto decoded = decode_publish(text, "dflt");
  const auto* request = std::get_if<PublishRequest>(&decoded);
  if (request == nullptr) {
    FUZZ_CHECK(!std::get<std::string>(decoded).empty());
    return;
  }
  // Accepted: the input was a JSON object, the data is a compact JSON object that keeps its
  // bytes, the topic and key obey SPEC "Data model".
  FUZZ_CHECK(check_json(text).kind == JsonKind::object);
  const JsonCheck data = check_json(request->data);
  FUZZ_CHECK(data.ok && data.kind == JsonKind::object);
  FUZZ_CHECK(minify_json(request->data) == request->data);
  FUZZ_CHECK(request->topic == "dflt" || is_valid_topic(request->topic));
  FUZZ_CHECK(!request->key || (!request->key->empty() && request->key->size() <= kMaxKeyBytes));
  if (request->data.size() == minify_json(text).size()) {
    FUZZ_CHECK(request->data == minify_json(text));  // a bare object is taken whole
  }
  // What the server stores comes back to a subscriber as an event frame that decodes to the same
  // record.
  Record record{7, request->topic, 1'700'000'000'000'000, request->data};
  const std::string frame = encode_event(record);
  FUZZ_CHECK(check_json(frame).ok);
  const auto back = decode_server_message(frame);
  FUZZ_CHECK(back && back->type == ServerMessage::Type::event && back->id == 7);
  FUZZ_CHECK(back->topic == request->topic && back->data == request->data);
}

void check_subscriber(std::string_view text) {
  const auto decoded = decode_subscriber_message(text);
  if (std::holds_alternative<SubscriberPong>(decoded)) {
    FUZZ_CHECK(check_json(text).kind == JsonKind::object);
    return;
  }
  const std::string& error = std::get<std::string>(decoded);
  FUZZ_CHECK(!error.empty());
  // The error goes back to the client as an error frame that must be valid JSON and round-trip.
  const std::string frame = encode_error(error);
  FUZZ_CHECK(check_json(frame).ok);
  const auto back = decode_server_message(frame);
  FUZZ_CHECK(back && back->type == ServerMessage::Type::error);
}

void check_server_message(std::string_view text) {
  const auto message = decode_server_message(text);
  if (!message) return;
  FUZZ_CHECK(check_json(text).kind == JsonKind::object);  // never a truncated frame
  FUZZ_CHECK(within(message->data, text));
  if (message->type == ServerMessage::Type::event || message->type == ServerMessage::Type::ack) {
    FUZZ_CHECK(message->id.has_value());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = evstream::fuzz::as_text(data, size);
  check_publish(text);
  check_subscriber(text);
  check_server_message(text);
  return 0;
}
