#include <doctest/doctest.h>

#include "core/wire/filter.hpp"

using namespace evstream;

namespace {

FilterClause clause(std::string_view text) {
  auto parsed = parse_filter_clause(text);
  if (const auto* error = std::get_if<FilterError>(&parsed)) FAIL(error->describe());
  return std::get<FilterClause>(parsed);
}

FilterError error_of(std::string_view text) {
  auto parsed = parse_filter_clause(text);
  REQUIRE(std::holds_alternative<FilterError>(parsed));
  return std::get<FilterError>(parsed);
}

bool match(std::string_view expression, std::string_view data) {
  return matches(clause(expression), EventFields(data));
}

constexpr std::string_view kDetection =
    R"({"camera_id":"cam-3","frame":1042,"confidence":0.91,"night":false,"note":null,)"
    R"("objects":[{"label":"person","confidence":0.93,"bbox":[10,20,30,40]},)"
    R"({"label":"car","confidence":0.61}],"tags":["door","left door"],)"
    R"("n":123456789012345678901234567890,"site":{"zone":{"id":7}},"id":"3"})";

}  // namespace

TEST_CASE("filter: compare_json_numbers is exact") {
  CHECK(compare_json_numbers("1", "1") == 0);
  CHECK(compare_json_numbers("1", "1.0") == 0);
  CHECK(compare_json_numbers("1", "1e0") == 0);
  CHECK(compare_json_numbers("100", "1e2") == 0);
  CHECK(compare_json_numbers("0.05", "5e-2") == 0);
  CHECK(compare_json_numbers("-0", "0") == 0);
  CHECK(compare_json_numbers("0.000", "-0e10") == 0);
  CHECK(compare_json_numbers("2", "10") < 0);
  CHECK(compare_json_numbers("-2", "-10") > 0);
  CHECK(compare_json_numbers("-1", "0") < 0);
  CHECK(compare_json_numbers("0", "-1") > 0);
  CHECK(compare_json_numbers("0.8", "0.81") < 0);
  CHECK(compare_json_numbers("0.91", "0.8") > 0);
  // Past 64 bits and past a double's 17 digits: still exact.
  CHECK(compare_json_numbers("123456789012345678901234567890", "123456789012345678901234567891") <
        0);
  CHECK(compare_json_numbers("9007199254740993", "9007199254740992") > 0);
  CHECK(compare_json_numbers("18446744073709551616", "18446744073709551615") > 0);
  CHECK(compare_json_numbers("1e400", "1e399") > 0);
  CHECK(compare_json_numbers("1e-400", "0") > 0);
  CHECK(compare_json_numbers("1E+2", "100.000") == 0);
  CHECK(compare_json_numbers("1e999999999999999999999", "1e999999999999999999998") >= 0);
}

TEST_CASE("filter: parse") {
  auto c = clause("camera_id = cam-3");
  CHECK(c.path == "camera_id");
  CHECK(c.op == FilterOp::eq);
  REQUIRE(c.values.size() == 1);
  CHECK(c.values[0].text == "cam-3");
  CHECK_FALSE(c.values[0].number);
  c = clause("objects.confidence>=0.8");
  CHECK(c.path == "objects.confidence");
  CHECK(c.op == FilterOp::ge);
  CHECK(c.values[0].number);
  c = clause("objects.label in person, car ,truck");
  CHECK(c.op == FilterOp::in);
  REQUIRE(c.values.size() == 3);
  CHECK(c.values[1].text == "car");
  c = clause(R"(description ~ "left door")");
  CHECK(c.op == FilterOp::contains);
  CHECK(c.values[0].text == "left door");
  CHECK(c.values[0].quoted);
  c = clause("exists objects.bbox");
  CHECK(c.op == FilterOp::exists);
  CHECK(c.path == "objects.bbox");
  c = clause("note != a b c");
  CHECK(c.values[0].text == "a b c");
}

TEST_CASE("filter: malformed expressions name the position and what was expected") {
  auto e = error_of("");
  CHECK(e.position == 0);
  CHECK(e.message.find("expected a path") != std::string::npos);
  e = error_of("confidence >> 1");
  CHECK(e.position == 12);
  CHECK(e.describe() ==
        "bad where \"confidence >> 1\" at position 12: expected a value after the operator");
  CHECK(error_of("confidence").message.find("expected an operator") != std::string::npos);
  CHECK(error_of("confidence =").message.find("expected a value") != std::string::npos);
  CHECK(error_of("a..b = 1").position == 2);
  CHECK(error_of("exists").message.find("expected a path") != std::string::npos);
  CHECK(error_of("exists a b").message.find("unexpected text") != std::string::npos);
  CHECK(error_of(R"(a = "unterminated)").message.find("expected a value") != std::string::npos);
  CHECK(error_of(R"(a = "x" y)").message.find("unexpected text") != std::string::npos);
  CHECK(error_of("a in x,,y").message.find("in list") != std::string::npos);
  CHECK(error_of("a ~ \"\"").message.find("non-empty") != std::string::npos);
  CHECK(error_of("a inx").message.find("expected an operator") != std::string::npos);
  CHECK(error_of(std::string(5000, 'a') + " = 1").message.find("4096") != std::string::npos);
}

TEST_CASE("filter: matching a detection") {
  CHECK(match("camera_id = cam-3", kDetection));
  CHECK_FALSE(match("camera_id = cam-4", kDetection));
  CHECK(match("camera_id != cam-4", kDetection));
  CHECK(match("missing != x", kDetection));  // != is "not =": a missing field is not x
  CHECK(match("frame = 1042", kDetection));
  CHECK(match("frame = 1042.0", kDetection));
  CHECK(match("frame > 1000", kDetection));
  CHECK_FALSE(match("frame < 1000", kDetection));
  CHECK(match("confidence >= 0.91", kDetection));
  CHECK_FALSE(match("confidence > 0.91", kDetection));
  // An array on the path means any element.
  CHECK(match("objects.label = car", kDetection));
  CHECK(match("objects.confidence >= 0.9", kDetection));
  CHECK_FALSE(match("objects.confidence > 0.95", kDetection));
  CHECK(match("objects.label in truck,person", kDetection));
  CHECK_FALSE(match("objects.label in truck,dog", kDetection));
  CHECK(match("objects.label != dog", kDetection));
  CHECK_FALSE(match("objects.label != car", kDetection));  // one element is a car
  CHECK(match("tags = door", kDetection));
  CHECK(match("tags ~ left", kDetection));
  CHECK(match("objects.bbox = 30", kDetection));
  CHECK(match("exists objects.bbox", kDetection));
  CHECK_FALSE(match("exists objects.mask", kDetection));
  CHECK(match("exists note", kDetection));
  CHECK(match("site.zone.id = 7", kDetection));
  CHECK(match("exists objects", kDetection));  // containers exist too, even empty ones
  CHECK(match("exists site.zone", kDetection));
  CHECK(match("exists e", R"({"e":[]})"));
  CHECK_FALSE(match("site = 7", kDetection));  // but never compare
  // Strings as strings, numbers as numbers.
  CHECK(match("id = 3", kDetection));                   // a bare number equals the string "3"
  CHECK(match(R"(id = "3")", kDetection));              // so does the quoted one
  CHECK_FALSE(match(R"(frame = "1042")", kDetection));  // a quoted value is only a string
  CHECK_FALSE(match("id > 2", kDetection));             // no ordering across kinds
  CHECK(match("camera_id > cam-2", kDetection));
  CHECK(match("camera_id ~ cam", kDetection));
  CHECK_FALSE(match("frame ~ 10", kDetection));
  CHECK(match("night = false", kDetection));
  CHECK_FALSE(match(R"(night = "false")", kDetection));
  CHECK(match("note = null", kDetection));
  // Big numbers compare exactly.
  CHECK(match("n = 123456789012345678901234567890", kDetection));
  CHECK_FALSE(match("n = 123456789012345678901234567891", kDetection));
  CHECK(match("n > 123456789012345678901234567889.999", kDetection));
}

TEST_CASE("filter: every clause must hold") {
  Filter filter;
  filter.clauses.push_back(clause("camera_id = cam-3"));
  filter.clauses.push_back(clause("objects.label = person"));
  const EventFields fields(kDetection);
  CHECK(matches(filter, fields));
  filter.clauses.push_back(clause("confidence < 0.5"));
  CHECK_FALSE(matches(filter, fields));
  CHECK(matches(Filter{}, fields));
}

TEST_CASE("filter: keys with escapes and unicode") {
  CHECK(match("café = ok", R"({"caf\u00e9":"ok"})"));
  CHECK(error_of(R"(caf\u00e9 = ok)").position == 3);  // paths are names, not JSON strings
  CHECK(match(R"(label = "caf\u00e9")", R"({"label":"caf\u00e9"})"));
  CHECK(match("label = café", R"({"label":"caf\u00e9"})"));
}

TEST_CASE("filter: a name holding a dot is not addressable, so a path names one place") {
  CHECK_FALSE(match("a.b = 1", R"({"a.b":1})"));
  CHECK(match("a.b = 2", R"({"a.b":1,"a":{"b":2}})"));
  CHECK_FALSE(match("exists x", R"({"x.":1,"s":{"x.y":1}})"));
  CHECK(match("a.b != 1", R"({"a.b":1})"));
}
