#include "core/util/config_file.hpp"

#include <doctest/doctest.h>

#include <fstream>

#include "tests/core/temp_dir.hpp"

using namespace evstream;

namespace {

// The line and message of the ConfigFileError that parsing `text` throws.
std::pair<int, std::string> error_of(std::string_view text) {
  try {
    parse_config_text(text);
  } catch (const ConfigFileError& e) {
    return {e.line(), e.what()};
  }
  FAIL("no error for: " << text);
  return {};
}

}  // namespace

TEST_CASE("util::parse_config_text") {
  SUBCASE("keys, values and their lines; comments and blank lines skipped") {
    const auto lines = parse_config_text(
        "# evstream serve\n"
        "\n"
        "host = \"127.0.0.1\"\n"
        "  port=8000   # the port\n"
        "; an INI comment\n"
        "retain-age = '30d'\r\n"
        "\"db\" = \"/var/lib/evstream/evstream.db\"\n");
    REQUIRE(lines.size() == 4);
    CHECK(lines[0].line == 3);
    CHECK(lines[0].key == "host");
    CHECK(lines[0].value == "\"127.0.0.1\"");
    CHECK(lines[1].line == 4);
    CHECK(lines[1].key == "port");
    CHECK(lines[1].value == "8000");
    CHECK(lines[2].key == "retain-age");
    CHECK(lines[2].value == "'30d'");
    CHECK(lines[3].key == "db");
    CHECK(lines[3].line == 7);
  }
  SUBCASE("a '#' or '=' inside quotes belongs to the value") {
    const auto lines = parse_config_text(
        "token = \"a#b=c\"  # comment\n"
        "format = '{id} #{data.n}'\n"
        "read-token = \"q\\\"#x\"\n");
    REQUIRE(lines.size() == 3);
    CHECK(lines[0].value == "\"a#b=c\"");
    CHECK(lines[1].value == "'{id} #{data.n}'");
    CHECK(lines[2].value == "\"q\\\"#x\"");
  }
  SUBCASE("an array over several lines is joined, its comments dropped") {
    const auto lines = parse_config_text(
        "nats = [\n"
        "  \"nats://a:4222\",  # first\n"
        "\n"
        "  \"nats://b:4222\",\n"
        "]\n"
        "port = 1\n");
    REQUIRE(lines.size() == 2);
    CHECK(lines[0].line == 1);
    CHECK(lines[0].value == "[\"nats://a:4222\", \"nats://b:4222\", ]");
    CHECK(lines[1].line == 6);
  }
  SUBCASE("a byte order mark and an empty text") {
    CHECK(parse_config_text("").empty());
    const auto lines = parse_config_text("\xEF\xBB\xBFport = 1");
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].key == "port");
  }
  SUBCASE("structure errors name their line") {
    CHECK(error_of("port = 1\n[serve]\nhost = \"x\"\n").first == 2);
    CHECK(error_of("[serve]\n").second.find("top level") != std::string::npos);
    CHECK(error_of("port = 1\njson\n") ==
          std::pair<int, std::string>{
              2, "expected key = value (strings in quotes; a flag as key = true)"});
    CHECK(error_of("= 5\n").second == "a key is missing before '='");
    CHECK(error_of("\n\nport =   # nothing\n") ==
          std::pair<int, std::string>{3,
                                      "port has no value: write port = VALUE (strings in quotes)"});
    CHECK(error_of("host = \"127.0.0.1\n") ==
          std::pair<int, std::string>{1, "host: a string is not closed: end it with \""});
    CHECK(error_of("url = [\"a\",\n\"b\n]\n").first == 2);
    CHECK(error_of("x = 1\nurl = [\"a\",\n\"b\"\n") ==
          std::pair<int, std::string>{2, "url: the array is not closed: end it with ]"});
  }
  SUBCASE("a key given twice names both lines") {
    const auto [line, message] = error_of("port = 1\nhost = \"h\"\nport = 2\n");
    CHECK(line == 3);
    CHECK(message.find("port is given twice (also on line 1)") == 0);
  }
}

TEST_CASE("util::read_config_file") {
  testing::TempDir dir;
  SUBCASE("reads a file") {
    std::ofstream(dir.file("serve.toml")) << "port = 8000\n";
    const auto lines = read_config_file(dir.file("serve.toml"));
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].value == "8000");
  }
  SUBCASE("a missing file or a directory is an error without a line") {
    try {
      read_config_file(dir.file("missing.toml"));
      FAIL("no error");
    } catch (const ConfigFileError& e) {
      CHECK(e.line() == 0);
      CHECK(std::string(e.what()) == "No such file or directory");
    }
    try {
      read_config_file(dir.file(""));
      FAIL("no error");
    } catch (const ConfigFileError& e) {
      CHECK(e.line() == 0);
      CHECK(std::string(e.what()).find("directory") != std::string::npos);
    }
  }
}

TEST_CASE("util::flag_env_name") {
  CHECK(flag_env_name("port") == "EVSTREAM_PORT");
  CHECK(flag_env_name("retain-age") == "EVSTREAM_RETAIN_AGE");
  CHECK(flag_env_name("nats-dedupe-window") == "EVSTREAM_NATS_DEDUPE_WINDOW");
}

TEST_CASE("util::is_secret_option") {
  CHECK(is_secret_option("token"));
  CHECK(is_secret_option("read-token"));
  CHECK_FALSE(is_secret_option("tokens"));
  CHECK_FALSE(is_secret_option("topic"));
  CHECK_FALSE(is_secret_option("-token"));
}

TEST_CASE("util::closest_name") {
  const std::vector<std::string> keys{"host", "port", "db", "retain-age", "retain-events"};
  CHECK(closest_name("prot", keys) == "port");
  CHECK(closest_name("retain_age", keys) == "retain-age");
  CHECK(closest_name("retainage", keys) == "retain-age");
  CHECK(closest_name("retain-evnts", keys) == "retain-events");
  CHECK(closest_name("dbs", keys) == "db");
  CHECK(closest_name("xyz", keys).empty());
  CHECK(closest_name("colour", keys).empty());
}
