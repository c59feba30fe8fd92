#include <doctest/doctest.h>

#include "core/wire/record_format.hpp"

using namespace evstream;

namespace {
const std::string kData =
    R"({"camera_id":"cam-1","objects":[{"label":"person","confidence":0.93}],"n":123456789012345678901234567890})";
WireRecord sample() {
  return WireRecord{42, "cams", "2026-11-25T17:01:12.123456Z", kData};
}
}  // namespace

TEST_CASE("record_format::format_json_line") {
  CHECK(format_json_line(sample()) ==
        R"({"id":42,"topic":"cams","time":"2026-11-25T17:01:12.123456Z","data":)" + kData + "}");
}

TEST_CASE("record_format::format_pretty_line") {
  SUBCASE("plain") {
    CHECK(format_pretty_line(sample(), false) == "2026-11-25 17:01:12.123  #42  cams  " + kData);
  }
  SUBCASE("coloured parts are wrapped in ANSI codes") {
    const std::string line = format_pretty_line(sample(), true);
    CHECK(line.find("\x1b[33m#42\x1b[0m") != std::string::npos);
    CHECK(line.find("\x1b[36mcams\x1b[0m") != std::string::npos);
    CHECK(line.find(kData) != std::string::npos);
  }
}

TEST_CASE("record_format::format_template") {
  const WireRecord record = sample();
  CHECK(format_template("{id} {topic} {time}", record) == "42 cams 2026-11-25T17:01:12.123456Z");
  CHECK(format_template("{data.camera_id}", record) == "cam-1");
  CHECK(format_template("{data.objects.0.label}:{data.objects.0.confidence}", record) ==
        "person:0.93");
  CHECK(format_template("{data.objects}", record) == R"([{"confidence":0.93,"label":"person"}])");
  CHECK(format_template("[{data.missing}] [{data.objects.5}]", record) == "[] []");
  CHECK(format_template("{data}", record) == kData);
  CHECK(format_template("{{id}} {unknown} {", record) == "{id}  {");
  // An index past any array, even one too large for size_t, is a missing field (was: std::stoul
  // threw out of tail's callback).
  CHECK(format_template("[{data.objects.99999999999999999999999}]", record) == "[]");
}
