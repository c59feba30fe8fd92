#include "core/wire/protocol.hpp"

#include "core/wire/json_text.hpp"

namespace evstream {

namespace {

constexpr std::string_view kPongHint =
    R"(subscribers may only send {"type":"pong","timestamp":"..."})";

// The members of a valid object, or an error message naming what was wrong.
std::variant<std::vector<JsonMember>, std::string> parse_object(std::string_view text,
                                                                std::string& minified,
                                                                std::string_view what) {
  const JsonCheck check = check_json(text);
  if (!check.ok) return "invalid JSON: " + check.error;
  if (check.kind != JsonKind::object) {
    return std::string(what) + " must be a JSON object, not " +
           (check.kind == JsonKind::array    ? "an array"
            : check.kind == JsonKind::string ? "a string"
            : check.kind == JsonKind::number ? "a number"
                                             : "a literal");
  }
  minified = minify_json(text);
  return top_level_members(minified);
}

const JsonMember* find_member(const std::vector<JsonMember>& members, std::string_view key) {
  const JsonMember* found = nullptr;
  for (const auto& member : members) {
    if (member.key == key) found = &member;  // the last one wins, as in most JSON parsers
  }
  return found;
}

std::optional<std::string> string_member(const std::vector<JsonMember>& members,
                                         std::string_view key) {
  const JsonMember* member = find_member(members, key);
  if (member == nullptr) return std::nullopt;
  return decode_json_string(member->value);
}

std::variant<PublishRequest, std::string> decode_envelope(const std::vector<JsonMember>& members,
                                                          std::string_view default_topic) {
  PublishRequest request;
  request.topic = default_topic;
  bool has_data = false;
  for (const auto& member : members) {
    if (member.key == "type") continue;
    if (member.key == "data") {
      if (member.value.empty() || member.value.front() != '{') {
        return std::string("\"data\" must be a JSON object");
      }
      request.data = member.value;
      has_data = true;
    } else if (member.key == "topic") {
      auto topic = decode_json_string(member.value);
      if (!topic) return std::string("\"topic\" must be a string");
      if (auto error = topic_error(*topic); !error.empty()) return error;
      request.topic = std::move(*topic);
    } else if (member.key == "key") {
      auto key = decode_json_string(member.value);
      if (!key) return std::string("\"key\" must be a string");
      if (key->empty() || key->size() > kMaxKeyBytes) {
        return "\"key\" must be 1-" + std::to_string(kMaxKeyBytes) + " bytes long";
      }
      request.key = std::move(*key);
    } else {
      return "unknown field " + json_quote(member.key) +
             " in the event envelope (expected type, data, topic, key)";
    }
  }
  if (!has_data) return std::string(R"(event envelope has no "data" object)");
  return request;
}

std::optional<EventId> integer_member(const std::vector<JsonMember>& members,
                                      std::string_view key) {
  const JsonMember* member = find_member(members, key);
  if (member == nullptr || member->value.empty()) return std::nullopt;
  try {
    std::size_t used = 0;
    const long long value = std::stoll(std::string(member->value), &used);
    if (used != member->value.size()) return std::nullopt;
    return value;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

std::string encode_ping(std::int64_t now_us, std::string_view connection_id,
                        std::optional<EventId> last_id) {
  std::string out = R"({"type":"ping","timestamp":")" + format_rfc3339(now_us) + '"';
  if (!connection_id.empty()) out += ",\"connection_id\":" + json_quote(connection_id);
  if (last_id) out += ",\"last_id\":" + std::to_string(*last_id);
  out += '}';
  return out;
}

std::string encode_event(const Record& record) {
  // {"type":"event", + the record's members: built on record_json so the two never drift.
  std::string record_text = record_json(record);
  return R"({"type":"event",)" + record_text.substr(1);
}

std::string encode_error(std::string_view message) {
  return R"({"type":"error","message":)" + json_quote(message) + '}';
}

std::string encode_ack(EventId id, bool duplicate) {
  std::string out = R"({"type":"ack","id":)" + std::to_string(id);
  if (duplicate) out += R"(,"duplicate":true)";
  out += '}';
  return out;
}

SubscriberMessage decode_subscriber_message(std::string_view text) {
  std::string minified;
  auto parsed = parse_object(text, minified, "a message");
  if (auto* error = std::get_if<std::string>(&parsed))
    return *error + "; " + std::string(kPongHint);
  const auto& members = std::get<std::vector<JsonMember>>(parsed);
  const auto type = string_member(members, "type");
  if (!type) return R"(message has no string "type" field; )" + std::string(kPongHint);
  if (*type != "pong") {
    return "unknown message type " + json_quote(*type) + "; " + std::string(kPongHint);
  }
  return SubscriberPong{};
}

PublishDecode decode_publish(std::string_view text, std::string_view default_topic) {
  std::string minified;
  auto parsed = parse_object(text, minified, "an event");
  if (auto* error = std::get_if<std::string>(&parsed)) return *error;
  const auto& members = std::get<std::vector<JsonMember>>(parsed);
  const auto type = string_member(members, "type");
  if (type && *type == "event" && find_member(members, "data") != nullptr) {
    auto envelope = decode_envelope(members, default_topic);
    if (auto* error = std::get_if<std::string>(&envelope)) return *error;
    return std::get<PublishRequest>(std::move(envelope));
  }
  PublishRequest request;
  request.topic = default_topic;
  request.data = std::move(minified);
  return request;
}

std::optional<ServerMessage> decode_server_message(std::string_view text) {
  // Server frames are compact, so top_level_members works on them without minifying; they come
  // from the network, so they are validated first (a truncated frame is not a message).
  if (text.empty() || text.front() != '{' || !check_json(text).ok) return std::nullopt;
  const auto members = top_level_members(text);
  const auto type = string_member(members, "type");
  if (!type) return std::nullopt;
  ServerMessage message;
  if (*type == "event") {
    message.type = ServerMessage::Type::event;
    message.id = integer_member(members, "id");
    message.topic = string_member(members, "topic").value_or("");
    message.time = string_member(members, "time").value_or("");
    if (const auto* data = find_member(members, "data")) message.data = data->value;
    if (!message.id) return std::nullopt;
  } else if (*type == "ping") {
    message.type = ServerMessage::Type::ping;
    message.last_id = integer_member(members, "last_id");
    message.connection_id = string_member(members, "connection_id").value_or("");
  } else if (*type == "ack") {
    message.type = ServerMessage::Type::ack;
    message.id = integer_member(members, "id");
    const auto* duplicate = find_member(members, "duplicate");
    message.duplicate = duplicate != nullptr && duplicate->value == "true";
    if (!message.id) return std::nullopt;
  } else if (*type == "error") {
    message.type = ServerMessage::Type::error;
    message.message = string_member(members, "message").value_or("");
  } else {
    message.type = ServerMessage::Type::unknown;
  }
  return message;
}

}  // namespace evstream
