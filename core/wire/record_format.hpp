#pragma once
// How tail prints a record: NDJSON (the record JSON), a readable (optionally coloured) line for
// terminals, or a user template such as "{id} {time} {data.camera_id}".
#include <string>
#include <string_view>

#include "core/wire/event.hpp"

namespace evstream {

// A record as received on the wire: time kept as the server's text.
struct WireRecord {
  EventId id = 0;
  std::string_view topic;
  std::string_view time;
  std::string_view data;  // compact JSON object text
};

std::string format_json_line(const WireRecord& record);  // {"id":..,"topic":..,"time":..,"data":..}
// "17:01:12.123  #42  events  {...}"; with colour, ANSI codes mark each part.
std::string format_pretty_line(const WireRecord& record, bool color);
// Replaces {id} {time} {topic} {data} and {data.a.b} (a nested field: strings unquoted, other
// values as compact JSON, missing fields empty); "{{" and "}}" are literal braces.
std::string format_template(std::string_view pattern, const WireRecord& record);

}  // namespace evstream
