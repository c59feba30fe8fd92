#include <doctest/doctest.h>

#include "core/wire/json_text.hpp"

using namespace evstream;

TEST_CASE("json_text::check_json") {
  SUBCASE("reports the kind of valid values") {
    CHECK(check_json(R"({"a":1})").kind == JsonKind::object);
    CHECK(check_json("[1,2]").kind == JsonKind::array);
    CHECK(check_json(R"("s")").kind == JsonKind::string);
    CHECK(check_json("12").kind == JsonKind::number);
    CHECK(check_json("true").kind == JsonKind::boolean);
    CHECK(check_json("null").kind == JsonKind::null);
    CHECK(check_json(" { } ").ok);
  }
  SUBCASE("says where invalid JSON goes wrong") {
    const auto check = check_json(R"({"a":1,})");
    CHECK_FALSE(check.ok);
    CHECK(check.error.find("line 1, column 8") != std::string::npos);
    CHECK(check.error.rfind("parse error", 0) == 0);
    CHECK_FALSE(check_json("").ok);
    CHECK_FALSE(check_json(R"({"a":1} x)").ok);
    CHECK_FALSE(check_json("{\"a\":\"\xff\"}").ok);  // not UTF-8
  }
  SUBCASE("a NUL byte is not the end of the text (found by make fuzz)") {
    using namespace std::string_view_literals;
    const auto check = check_json("{\"a\":1}\0{\"junk"sv);
    CHECK_FALSE(check.ok);
    CHECK(check.error == "syntax error at byte 8: unexpected NUL byte");
    CHECK_FALSE(check_json("-12.5e6\0\0 "sv).ok);
    CHECK_FALSE(check_json("\"a\0b\""sv).ok);
  }
  SUBCASE("limits nesting depth") {
    std::string deep(kMaxJsonDepth, '[');
    deep += std::string(kMaxJsonDepth, ']');
    CHECK(check_json(deep).ok);
    std::string deeper(kMaxJsonDepth + 1, '[');
    deeper += std::string(kMaxJsonDepth + 1, ']');
    CHECK(check_json(deeper).error.find("nesting deeper") != std::string::npos);
  }
}

TEST_CASE("json_text::minify_json") {
  CHECK(minify_json("{ \"a b\" : [ 1 , 2 ],\n\t\"c\": \" x \\\" y \" }") ==
        R"({"a b":[1,2],"c":" x \" y "})");
  CHECK(minify_json(R"({"n":123456789012345678901234567890,"f":1.10,"e":1E+400})") ==
        R"({"n":123456789012345678901234567890,"f":1.10,"e":1E+400})");
  CHECK(minify_json(R"({"u":"\u00e9\ud83d\ude00"})") == R"({"u":"\u00e9\ud83d\ude00"})");
}

TEST_CASE("json_text::top_level_members") {
  const std::string text = R"({"type":"event","data":{"a":[1,{"b":"}"}]},"k\"q":"v","n":-1.5e3})";
  const auto members = top_level_members(text);
  REQUIRE(members.size() == 4);
  CHECK(members[0].key == "type");
  CHECK(members[0].value == R"("event")");
  CHECK(members[1].key == "data");
  CHECK(members[1].value == R"({"a":[1,{"b":"}"}]})");
  CHECK(members[2].key == "k\"q");
  CHECK(members[3].value == "-1.5e3");
  CHECK(top_level_members("{}").empty());
  CHECK(top_level_members("[1]").empty());
  // Not valid JSON (a truncated frame): nothing read past the end (found by make fuzz).
  CHECK(top_level_members(R"({"a)").empty());
  CHECK(top_level_members(R"({"a")").empty());
  CHECK(top_level_members(R"({"a":)").size() == 1);
}

TEST_CASE("json_text::array_elements") {
  const auto elements = array_elements(R"([{"a":[1,"],"]},2.50,"x,y",[],null,{}])");
  REQUIRE(elements.size() == 6);
  CHECK(elements[0] == R"({"a":[1,"],"]})");
  CHECK(elements[1] == "2.50");
  CHECK(elements[2] == R"("x,y")");
  CHECK(elements[3] == "[]");
  CHECK(elements[4] == "null");
  CHECK(elements[5] == "{}");
  CHECK(array_elements("[]").empty());
  CHECK(array_elements("{}").empty());
  CHECK(array_elements("[7]") == std::vector<std::string_view>{"7"});
}

TEST_CASE("json_text::decode_json_string and json_quote") {
  CHECK(decode_json_string(R"("plain")") == "plain");
  CHECK(decode_json_string(R"("a\nb\u00e9")") == "a\nb\xc3\xa9");
  CHECK_FALSE(decode_json_string("12"));
  CHECK(json_quote("say \"hi\"\n") == R"("say \"hi\"\n")");
  CHECK(json_quote("caf\xc3\xa9") == "\"caf\xc3\xa9\"");
}
