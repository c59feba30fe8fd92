#pragma once
// The wire protocol in one place: encoding of every server -> client message (SPEC "serve") and
// decoding of what clients send. Encoders return the exact text payload of one WebSocket frame.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "core/wire/event.hpp"

namespace evstream {

// {"type":"ping","timestamp":"...","connection_id":"c7","last_id":42}; the last two only in the
// first message of a subscription.
std::string encode_ping(std::int64_t now_us, std::string_view connection_id = {},
                        std::optional<EventId> last_id = std::nullopt);
// {"type":"event","id":42,"topic":"events","time":"...","data":{...}}
std::string encode_event(const Record& record);
// {"type":"error","message":"..."}
std::string encode_error(std::string_view message);
// {"type":"ack","id":42} or {"type":"ack","id":42,"duplicate":true}
std::string encode_ack(EventId id, bool duplicate);

// What a subscriber may send: a pong. Anything else decodes to an error message for the client.
struct SubscriberPong {};
using SubscriberMessage = std::variant<SubscriberPong, std::string /* error */>;
SubscriberMessage decode_subscriber_message(std::string_view text);

// A decoded publish frame: the envelope {"type":"event","data":{...},"topic":"t","key":"k"} or a
// bare object taken as data. `data` is compact JSON text with the original number digits.
struct PublishRequest {
  std::string topic;
  std::string data;
  std::optional<std::string> key;
};
using PublishDecode = std::variant<PublishRequest, std::string /* error */>;
PublishDecode decode_publish(std::string_view text, std::string_view default_topic = kDefaultTopic);

// What a client receives from the server, for tail/publish/loadtest.
struct ServerMessage {
  enum class Type { ping, event, error, ack, unknown } type = Type::unknown;
  std::optional<EventId> id;       // event, ack
  std::optional<EventId> last_id;  // first ping
  std::string connection_id;       // first ping
  std::string message;             // error
  bool duplicate = false;          // ack
  std::string topic;               // event
  std::string time;                // event
  std::string_view data;           // event: raw data text (a view into the decoded frame)
};
// Decodes one server frame; nullopt when it is not a JSON object with a known "type".
std::optional<ServerMessage> decode_server_message(std::string_view text);

}  // namespace evstream
