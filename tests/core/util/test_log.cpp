#include "core/util/log.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "core/util/error.hpp"

using evstream::Error;
using evstream::LogFormat;
using evstream::Logger;
using evstream::LogLevel;

namespace {

const std::regex kTimePrefix(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z )");

// The text record without its timestamp, after checking the timestamp's shape.
std::string without_time(const std::string& line) {
  REQUIRE(std::regex_search(line, kTimePrefix));
  return line.substr(25);
}

// A pipe whose ends close on scope exit; the tests' records are far below the pipe buffer.
struct Pipe {
  int read_fd = -1;
  int write_fd = -1;
  Pipe() {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    read_fd = fds[0];
    write_fd = fds[1];
  }
  ~Pipe() {
    if (read_fd >= 0) ::close(read_fd);
    if (write_fd >= 0) ::close(write_fd);
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  // Closes the write end and returns everything written.
  std::string drain() {
    ::close(write_fd);
    write_fd = -1;
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = ::read(read_fd, buf, sizeof buf)) > 0;) out.append(buf, n);
    return out;
  }
};

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (std::size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1) {
    lines.push_back(text.substr(start, end - start));
  }
  CHECK(start == text.size());  // every record ends with a newline
  return lines;
}

}  // namespace

TEST_CASE("log::parse_log_level") {
  SUBCASE("every accepted name") {
    CHECK(evstream::parse_log_level("debug") == LogLevel::debug);
    CHECK(evstream::parse_log_level("info") == LogLevel::info);
    CHECK(evstream::parse_log_level("warn") == LogLevel::warn);
    CHECK(evstream::parse_log_level("warning") == LogLevel::warn);
    CHECK(evstream::parse_log_level("error") == LogLevel::error);
    CHECK(evstream::parse_log_level("off") == LogLevel::off);
    CHECK(evstream::parse_log_level("INFO") == LogLevel::info);
  }
  SUBCASE("anything else") {
    CHECK_THROWS_WITH_AS(evstream::parse_log_level("verbose"),
                         "invalid log level \"verbose\": expected debug, info, warn, error or off",
                         Error);
    CHECK_THROWS_AS(evstream::parse_log_level(""), Error);
    CHECK_THROWS_AS(evstream::parse_log_level("info "), Error);
  }
}

TEST_CASE("log::parse_log_format") {
  CHECK(evstream::parse_log_format("text") == LogFormat::text);
  CHECK(evstream::parse_log_format("json") == LogFormat::json);
  CHECK(evstream::parse_log_format("JSON") == LogFormat::json);
  CHECK_THROWS_WITH_AS(evstream::parse_log_format("xml"),
                       "invalid log format \"xml\": expected text or json", Error);
}

TEST_CASE("log::text format") {
  const Logger logger(LogLevel::debug, LogFormat::text, -1);

  SUBCASE("time, level, message, then fields in order") {
    const std::string line = logger.format(
        LogLevel::info, "connect", {{"id", 7}, {"peer", "127.0.0.1"}, {"path", "/ws/events"}});
    CHECK(without_time(line) == "info connect id=7 peer=127.0.0.1 path=/ws/events");
  }
  SUBCASE("level words") {
    CHECK(without_time(logger.format(LogLevel::debug, "m", {})) == "debug m");
    CHECK(without_time(logger.format(LogLevel::warn, "m", {})) == "warn m");
    CHECK(without_time(logger.format(LogLevel::error, "m", {})) == "error m");
  }
  SUBCASE("value types") {
    const std::string s = "owned";
    const std::string line = logger.format(LogLevel::info, "m",
                                           {{"i", std::int64_t{-3}},
                                            {"u", std::uint64_t{18}},
                                            {"d", 0.25},
                                            {"whole", 2.0},
                                            {"t", true},
                                            {"f", false},
                                            {"s", s}});
    CHECK(without_time(line) == "info m i=-3 u=18 d=0.25 whole=2 t=true f=false s=owned");
  }
  SUBCASE("strings that need quoting") {
    const std::string line = logger.format(LogLevel::warn, "close",
                                           {{"reason", "slow consumer"},
                                            {"q", "say \"hi\""},
                                            {"eq", "a=b"},
                                            {"empty", ""},
                                            {"nl", "a\nb"},
                                            {"bs", "a\\b"}});
    CHECK(
        without_time(line) ==
        R"(warn close reason="slow consumer" q="say \"hi\"" eq="a=b" empty="" nl="a\nb" bs="a\\b")");
  }
  SUBCASE("the message cannot break the line") {
    const std::string line = logger.format(LogLevel::info, "bad\nframe\r\x01", {});
    CHECK(without_time(line) == R"(info bad\nframe\r\x01)");
  }
  SUBCASE("the time is now, in UTC") {
    const std::string line = logger.format(LogLevel::info, "m", {});
    const std::time_t now = std::time(nullptr);
    std::tm utc{};
    gmtime_r(&now, &utc);
    const std::string year = std::to_string(utc.tm_year + 1900) + "-";
    CHECK(line.starts_with(year));
  }
}

TEST_CASE("log::json format") {
  const Logger logger(LogLevel::debug, LogFormat::json, -1);

  SUBCASE("fields in order, with their JSON types") {
    const std::string line =
        logger.format(LogLevel::info, "connect",
                      {{"id", 7}, {"peer", "127.0.0.1"}, {"ok", true}, {"ratio", 0.5}});
    const auto after_time = line.find("\",\"level\"");
    REQUIRE(line.starts_with("{\"time\":\""));
    REQUIRE(after_time != std::string::npos);
    CHECK(std::regex_match(line.substr(9, after_time - 9),
                           std::regex(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)")));
    CHECK(line.substr(after_time) ==
          R"(","level":"info","msg":"connect","id":7,"peer":"127.0.0.1","ok":true,"ratio":0.5})");
  }
  SUBCASE("strings are escaped") {
    const std::string line = logger.format(LogLevel::error, "say \"hi\"\n", {{"path", "a\\b\tc"}});
    const auto record = nlohmann::json::parse(line);
    CHECK(record["level"] == "error");
    CHECK(record["msg"] == "say \"hi\"\n");
    CHECK(record["path"] == "a\\b\tc");
    CHECK(line.find('\n') == std::string::npos);
  }
  SUBCASE("invalid UTF-8 does not throw") {
    std::string line;
    CHECK_NOTHROW(line = logger.format(LogLevel::info, "m", {{"peer", "\xff\xfe"}}));
    CHECK(nlohmann::json::parse(line)["peer"] == "\xEF\xBF\xBD\xEF\xBF\xBD");
  }
}

TEST_CASE("log::Logger writes") {
  Pipe pipe;

  SUBCASE("one newline-terminated line per record, filtered by level") {
    Logger logger(LogLevel::info, LogFormat::text, pipe.write_fd);
    CHECK_FALSE(logger.enabled(LogLevel::debug));
    CHECK(logger.enabled(LogLevel::warn));
    logger.debug("hidden");
    logger.info("connect", {{"id", 7}});
    logger.warn("slow", {{"reason", "slow consumer"}});
    logger.error("gone");
    logger.log(LogLevel::off, "never");
    const auto lines = split_lines(pipe.drain());
    REQUIRE(lines.size() == 3);
    CHECK(without_time(lines[0]) == "info connect id=7");
    CHECK(without_time(lines[1]) == "warn slow reason=\"slow consumer\"");
    CHECK(without_time(lines[2]) == "error gone");
  }
  SUBCASE("json lines parse one by one") {
    Logger logger(LogLevel::debug, LogFormat::json, pipe.write_fd);
    logger.debug("a", {{"n", 1}});
    logger.info("b", {{"n", 2}});
    const auto lines = split_lines(pipe.drain());
    REQUIRE(lines.size() == 2);
    CHECK(nlohmann::json::parse(lines[0])["msg"] == "a");
    CHECK(nlohmann::json::parse(lines[1])["n"] == 2);
  }
  SUBCASE("level off writes nothing") {
    Logger logger(LogLevel::off, LogFormat::text, pipe.write_fd);
    logger.error("nothing");
    logger.log(LogLevel::off, "nothing");
    CHECK(pipe.drain().empty());
  }
  SUBCASE("a bad fd is ignored") {
    Logger logger(LogLevel::info, LogFormat::text, -1);
    CHECK_NOTHROW(logger.info("lost"));
  }
}

TEST_CASE("log::Logger from many threads") {
  char path[] = "/tmp/evstream_log_test_XXXXXX";
  const int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  ::unlink(path);
  {
    Logger logger(LogLevel::info, LogFormat::text, fd);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&logger, t] {
        for (int i = 0; i < 500; ++i) logger.info("record", {{"thread", t}, {"i", i}});
      });
    }
    for (auto& thread : threads) thread.join();
  }
  REQUIRE(::lseek(fd, 0, SEEK_SET) == 0);
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) text.append(buf, n);
  ::close(fd);
  const auto lines = split_lines(text);
  CHECK(lines.size() == 2000);
  const std::regex whole(R"(info record thread=[0-3] i=\d+)");
  int bad = 0;
  for (const auto& line : lines) bad += std::regex_match(without_time(line), whole) ? 0 : 1;
  CHECK(bad == 0);
}
