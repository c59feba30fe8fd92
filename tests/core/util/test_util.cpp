#include "core/util/util.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "core/util/error.hpp"

using evstream::Error;

namespace {

// The message an evstream::Error carries, or "" when the call does not throw one.
template <typename F>
std::string error_of(F&& call) {
  try {
    call();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("util::parse_duration_us") {
  using evstream::parse_duration_us;

  SUBCASE("each unit") {
    CHECK(parse_duration_us("250us") == 250);
    CHECK(parse_duration_us("500ms") == 500'000);
    CHECK(parse_duration_us("30s") == 30'000'000);
    CHECK(parse_duration_us("5m") == 300'000'000);
    CHECK(parse_duration_us("2h") == 7'200'000'000);
    CHECK(parse_duration_us("7d") == 604'800'000'000);
  }
  SUBCASE("a bare number is seconds") {
    CHECK(parse_duration_us("30") == 30'000'000);
    CHECK(parse_duration_us("0") == 0);
    CHECK(parse_duration_us("1.5") == 1'500'000);
  }
  SUBCASE("zero with a unit") {
    CHECK(parse_duration_us("0s") == 0);
    CHECK(parse_duration_us("0ms") == 0);
  }
  SUBCASE("fractions that come out whole") {
    CHECK(parse_duration_us("1.5s") == 1'500'000);
    CHECK(parse_duration_us("0.25ms") == 250);
    CHECK(parse_duration_us("1.5h") == 5'400'000'000);
    CHECK(parse_duration_us("0.5d") == 43'200'000'000);
    CHECK(parse_duration_us("1.000000s") == 1'000'000);
    CHECK(parse_duration_us("2.50000000000000000000000s") == 2'500'000);
    // 0.5^13 of a day is exactly 10546875 us.
    CHECK(parse_duration_us("0.0001220703125d") == 10'546'875);
  }
  SUBCASE("the largest value") {
    const auto max = std::numeric_limits<std::int64_t>::max();
    CHECK(parse_duration_us("9223372036854775807us") == max);
  }
  SUBCASE("unknown units and junk use the brief message") {
    CHECK_THROWS_WITH_AS(
        parse_duration_us("5x"),
        "invalid duration \"5x\": use a number with a unit: 500ms, 30s, 5m, 2h, 7d", Error);
    CHECK_THROWS_AS(parse_duration_us("5 s"), Error);
    CHECK_THROWS_AS(parse_duration_us("5S"), Error);
    CHECK_THROWS_AS(parse_duration_us("s"), Error);
    CHECK_THROWS_AS(parse_duration_us("ms"), Error);
    CHECK_THROWS_AS(parse_duration_us("1.s"), Error);
    CHECK_THROWS_AS(parse_duration_us(".5s"), Error);
    CHECK_THROWS_AS(parse_duration_us("+5s"), Error);
    CHECK_THROWS_AS(parse_duration_us("5s5"), Error);
    CHECK_THROWS_AS(parse_duration_us("1h30m"), Error);
    CHECK_THROWS_AS(parse_duration_us(" 5s"), Error);
  }
  SUBCASE("empty") {
    CHECK_THROWS_WITH_AS(parse_duration_us(""),
                         "invalid duration \"\": use a number with a unit: 500ms, 30s, 5m, 2h, 7d",
                         Error);
  }
  SUBCASE("negative") {
    CHECK_THROWS_WITH_AS(parse_duration_us("-5s"),
                         "invalid duration \"-5s\": it cannot be negative; use a number with a "
                         "unit: 500ms, 30s, 5m, 2h, 7d",
                         Error);
  }
  SUBCASE("overflow") {
    const std::string message = error_of([] { parse_duration_us("9223372036854775808us"); });
    CHECK(message.find("invalid duration \"9223372036854775808us\": it is too large") == 0);
    CHECK_THROWS_AS(parse_duration_us("200000000d"), Error);
    CHECK_THROWS_AS(parse_duration_us("99999999999999999999999s"), Error);
    CHECK_THROWS_AS(parse_duration_us("106751991.2d"), Error);
  }
  SUBCASE("finer than a microsecond") {
    CHECK_THROWS_WITH_AS(parse_duration_us("1.5us"),
                         "invalid duration \"1.5us\": it is finer than 1us; use a number with a "
                         "unit: 500ms, 30s, 5m, 2h, 7d",
                         Error);
    CHECK_THROWS_AS(parse_duration_us("0.0000001s"), Error);
    CHECK_THROWS_AS(parse_duration_us("0.1000000000000000000001s"), Error);
  }
}

TEST_CASE("util::format_duration") {
  using evstream::format_duration;

  SUBCASE("the coarsest exact unit") {
    CHECK(format_duration(30'000'000) == "30s");
    CHECK(format_duration(1'500'000) == "1500ms");
    CHECK(format_duration(7'200'000'000) == "2h");
    CHECK(format_duration(90'000'000) == "90s");
    CHECK(format_duration(300'000'000) == "5m");
    CHECK(format_duration(604'800'000'000) == "7d");
    CHECK(format_duration(250) == "250us");
    CHECK(format_duration(1'000'001) == "1000001us");
  }
  SUBCASE("zero") {
    CHECK(format_duration(0) == "0s");
  }
  SUBCASE("negative") {
    CHECK(format_duration(-500'000) == "-500ms");
    CHECK(format_duration(std::numeric_limits<std::int64_t>::min()) == "-9223372036854775808us");
  }
  SUBCASE("round-trips through parse_duration_us") {
    for (const std::int64_t us :
         {std::int64_t{1}, std::int64_t{999}, std::int64_t{1'000}, std::int64_t{61'000'000},
          std::int64_t{86'400'000'000}, std::numeric_limits<std::int64_t>::max()}) {
      CHECK(evstream::parse_duration_us(format_duration(us)) == us);
    }
  }
}

TEST_CASE("util::parse_size") {
  using evstream::parse_size;

  SUBCASE("plain bytes") {
    CHECK(parse_size("4096") == 4096);
    CHECK(parse_size("0") == 0);
    CHECK(parse_size("512B") == 512);
    CHECK(parse_size("512b") == 512);
  }
  SUBCASE("decimal prefixes") {
    CHECK(parse_size("1k") == 1'000);
    CHECK(parse_size("1kB") == 1'000);
    CHECK(parse_size("2MB") == 2'000'000);
    CHECK(parse_size("3G") == 3'000'000'000);
    CHECK(parse_size("1T") == 1'000'000'000'000);
  }
  SUBCASE("binary prefixes") {
    CHECK(parse_size("1KiB") == 1'024);
    CHECK(parse_size("1Ki") == 1'024);
    CHECK(parse_size("1MiB") == 1'048'576);
    CHECK(parse_size("1mib") == 1'048'576);
    CHECK(parse_size("2GiB") == 2'147'483'648);
    CHECK(parse_size("1TiB") == 1'099'511'627'776);
  }
  SUBCASE("fractions that come out whole") {
    CHECK(parse_size("1.5KiB") == 1'536);
    CHECK(parse_size("0.5MB") == 500'000);
  }
  SUBCASE("the largest value") {
    CHECK(parse_size("18446744073709551615") == std::numeric_limits<std::uint64_t>::max());
  }
  SUBCASE("bad input") {
    CHECK_THROWS_WITH_AS(parse_size("5x"),
                         "invalid size \"5x\": use a number of bytes with an optional unit: 4096, "
                         "512B, 64KiB, 1MiB, 2MB",
                         Error);
    CHECK_THROWS_AS(parse_size(""), Error);
    CHECK_THROWS_AS(parse_size("KiB"), Error);
    CHECK_THROWS_AS(parse_size("1iB"), Error);
    CHECK_THROWS_AS(parse_size("1 KiB"), Error);
    CHECK_THROWS_AS(parse_size("1KiBB"), Error);
  }
  SUBCASE("negative, fractional bytes, overflow") {
    CHECK(error_of([] { parse_size("-1"); }).find("it cannot be negative") != std::string::npos);
    CHECK(error_of([] { parse_size("0.1KiB"); }).find("not a whole number of bytes") !=
          std::string::npos);
    CHECK(error_of([] { parse_size("18446744073709551616"); }).find("does not fit in 64 bits") !=
          std::string::npos);
    CHECK_THROWS_AS(parse_size("17000000TiB"), Error);
  }
}

TEST_CASE("util::parse_ws_url") {
  using evstream::parse_ws_url;

  SUBCASE("ws:// with a port and no path takes the default path") {
    const auto url = parse_ws_url("ws://localhost:8000", "/ws/events");
    CHECK_FALSE(url.tls);
    CHECK(url.host == "localhost");
    CHECK(url.port == 8000);
    CHECK(url.path == "/ws/events");
    CHECK(url.to_string() == "ws://localhost:8000/ws/events");
  }
  SUBCASE("a lone slash also takes the default path") {
    CHECK(parse_ws_url("ws://h:1/", "/ws/events").path == "/ws/events");
  }
  SUBCASE("schemes and their default ports") {
    CHECK(parse_ws_url("ws://h", "/").to_string() == "ws://h:80/");
    CHECK(parse_ws_url("wss://h", "/").to_string() == "wss://h:443/");
    CHECK(parse_ws_url("http://h", "/").to_string() == "ws://h:80/");
    CHECK(parse_ws_url("https://h", "/").to_string() == "wss://h:443/");
    CHECK(parse_ws_url("HTTPS://h:9", "/").to_string() == "wss://h:9/");
  }
  SUBCASE("a bare host or host:port is ws, port 8000 by default") {
    CHECK(parse_ws_url("localhost", "/ws/events").to_string() == "ws://localhost:8000/ws/events");
    CHECK(parse_ws_url("example.com:9000", "/ws/events").to_string() ==
          "ws://example.com:9000/ws/events");
    CHECK(parse_ws_url("10.0.0.1:81/x", "/d").to_string() == "ws://10.0.0.1:81/x");
  }
  SUBCASE("path and query are kept") {
    const auto url = parse_ws_url("ws://h:1/ws/publish?token=x", "/ws/events");
    CHECK(url.path == "/ws/publish?token=x");
    CHECK(url.path == "/ws/publish?token=x");
    CHECK(url.to_string() == "ws://h:1/ws/publish?token=***");  // secrets never reach messages
    CHECK(parse_ws_url("ws://h:1/p?a=1&token=s3&mytoken=k", "/").to_string() ==
          "ws://h:1/p?a=1&token=***&mytoken=k");
  }
  SUBCASE("a query without a path goes after the default path") {
    CHECK(parse_ws_url("ws://h:1?since=5", "/ws/events").path == "/ws/events?since=5");
    CHECK(parse_ws_url("ws://h:1/?since=5", "/ws/events").path == "/ws/events?since=5");
  }
  SUBCASE("a fragment is dropped") {
    CHECK(parse_ws_url("ws://h:1/p#frag", "/d").path == "/p");
  }
  SUBCASE("a default path without a slash gets one") {
    CHECK(parse_ws_url("ws://h:1", "ws/events").path == "/ws/events");
    CHECK(parse_ws_url("ws://h:1", "").path == "/");
  }
  SUBCASE("IPv6 in brackets") {
    const auto url = parse_ws_url("[::1]:8000", "/ws/events");
    CHECK(url.host == "::1");
    CHECK(url.port == 8000);
    CHECK(url.to_string() == "ws://[::1]:8000/ws/events");
    CHECK(parse_ws_url("wss://[fe80::1]/x", "/").to_string() == "wss://[fe80::1]:443/x");
    CHECK(parse_ws_url("[::1]", "/").port == 8000);
  }
  SUBCASE("an unknown scheme") {
    CHECK_THROWS_WITH_AS(parse_ws_url("ftp://x", "/"),
                         "invalid URL \"ftp://x\": expected ws://, wss://, http:// or https://",
                         Error);
  }
  SUBCASE("bad ports") {
    CHECK_THROWS_WITH_AS(parse_ws_url("ws://h:99999", "/"),
                         "invalid URL \"ws://h:99999\": port \"99999\" is not a number from 1 to "
                         "65535; use ws://host:port, wss://, http://, https:// or host:port",
                         Error);
    CHECK_THROWS_AS(parse_ws_url("ws://h:0", "/"), Error);
    CHECK_THROWS_AS(parse_ws_url("ws://h:", "/"), Error);
    CHECK_THROWS_AS(parse_ws_url("ws://h:8o", "/"), Error);
    CHECK_THROWS_AS(parse_ws_url("h:-1", "/"), Error);
    CHECK_THROWS_AS(parse_ws_url("[::1]:", "/"), Error);
    CHECK_THROWS_AS(parse_ws_url("ws://h:123456", "/"), Error);
  }
  SUBCASE("missing or malformed hosts") {
    CHECK(error_of([] { parse_ws_url("", "/"); }).find("the host is missing") != std::string::npos);
    CHECK(error_of([] { parse_ws_url("ws://", "/"); }).find("the host is missing") !=
          std::string::npos);
    CHECK(error_of([] { parse_ws_url("ws://:80/x", "/"); }).find("the host is missing") !=
          std::string::npos);
    CHECK(error_of([] { parse_ws_url("ws://[]:80", "/"); }).find("the host is missing") !=
          std::string::npos);
    CHECK(error_of([] { parse_ws_url("ws://[::1:80", "/"); }).find("no closing ']'") !=
          std::string::npos);
    CHECK(error_of([] { parse_ws_url("ws://[::1]x", "/"); }).find("after ']'") !=
          std::string::npos);
    CHECK(error_of([] { parse_ws_url("::1", "/"); }).find("need brackets") != std::string::npos);
    // A stray bracket would be written back unbracketed and not parse again (found by make fuzz).
    CHECK(error_of([] { parse_ws_url("ws://[[]", "/"); }).find("'[' or ']' in the host") !=
          std::string::npos);
    CHECK(error_of([] { parse_ws_url("ws://a]b:80", "/"); }).find("'[' or ']' in the host") !=
          std::string::npos);
    CHECK(error_of([] { parse_ws_url("ws://u:p@h", "/"); }).find("--token") != std::string::npos);
  }
  SUBCASE("'://' inside a path is not a scheme") {
    CHECK(parse_ws_url("h:1/p?u=a://b", "/").path == "/p?u=a://b");
  }
}

TEST_CASE("util::parse_ws_url_list") {
  using evstream::parse_ws_url_list;
  using evstream::to_string;
  using Values = std::vector<std::string>;

  SUBCASE("one URL is the same as parse_ws_url") {
    const auto urls = parse_ws_url_list(Values{"ws://h:1"}, "/ws/events");
    REQUIRE(urls.size() == 1);
    CHECK(urls[0].to_string() == "ws://h:1/ws/events");
  }
  SUBCASE("a comma list, in order, each with the default path") {
    const auto urls = parse_ws_url_list(Values{"ws://a:1,http://b:2/x,c"}, "/ws/publish");
    REQUIRE(urls.size() == 3);
    CHECK(urls[0].to_string() == "ws://a:1/ws/publish");
    CHECK(urls[1].to_string() == "ws://b:2/x");
    CHECK(urls[2].to_string() == "ws://c:8000/ws/publish");
  }
  SUBCASE("repeated values and lists mix, keeping their order") {
    const auto urls = parse_ws_url_list(Values{"a:1", "b:2,c:3", "d:4"}, "/");
    REQUIRE(urls.size() == 4);
    CHECK(urls[1].host == "b");
    CHECK(urls[2].host == "c");
    CHECK(urls[3].port == 4);
  }
  SUBCASE("spaces around items are ignored") {
    const auto urls = parse_ws_url_list(Values{" ws://a:1 , ws://b:2\t"}, "/");
    REQUIRE(urls.size() == 2);
    CHECK(urls[0].host == "a");
    CHECK(urls[1].host == "b");
  }
  SUBCASE("IPv6 and queries survive the split") {
    const auto urls = parse_ws_url_list(Values{"[::1]:9/p?token=t,wss://h"}, "/");
    REQUIRE(urls.size() == 2);
    CHECK(urls[0].host == "::1");
    CHECK(urls[0].path == "/p?token=t");
    CHECK(urls[1].tls);
  }
  SUBCASE("a bad item is named") {
    CHECK_THROWS_WITH_AS(parse_ws_url_list(Values{"ws://a:1,ftp://b"}, "/"),
                         "invalid URL \"ftp://b\": expected ws://, wss://, http:// or https://",
                         Error);
    CHECK(error_of([] {
            parse_ws_url_list(Values{"a:1", "b:99999"}, "/");
          }).find("\"b:99999\"") != std::string::npos);
  }
  SUBCASE("empty items and empty lists") {
    for (const char* bad : {"a:1,,b:2", "a:1,", ",a:1", " ", ""}) {
      CAPTURE(bad);
      CHECK(error_of([bad] { parse_ws_url_list(Values{bad}, "/"); }).find("empty item") !=
            std::string::npos);
    }
    CHECK(error_of([] { parse_ws_url_list(Values{}, "/"); }).find("no server URL") !=
          std::string::npos);
  }
  SUBCASE("to_string joins them, tokens masked") {
    CHECK(to_string(parse_ws_url_list(Values{"a:1/p?token=s,b:2"}, "/")) ==
          "ws://a:1/p?token=***, ws://b:2/");
  }
}

TEST_CASE("util::http_base") {
  using evstream::http_base;
  using evstream::parse_ws_url;
  CHECK(http_base(parse_ws_url("ws://h:8000/ws/events", "/")) == "http://h:8000");
  CHECK(http_base(parse_ws_url("wss://h/ws/events", "/")) == "https://h:443");
  CHECK(http_base(parse_ws_url("[::1]:9", "/")) == "http://[::1]:9");
}

TEST_CASE("util::count_of") {
  using evstream::count_of;
  CHECK(count_of(0, "event") == "0 events");
  CHECK(count_of(1, "event") == "1 event");
  CHECK(count_of(2, "ping") == "2 pings");
}

TEST_CASE("util::url_decode") {
  using evstream::url_decode;

  SUBCASE("plain text passes through") {
    CHECK(url_decode("abc-_.~") == "abc-_.~");
  }
  SUBCASE("escapes in either case and plus as space") {
    CHECK(url_decode("a%20b") == "a b");
    CHECK(url_decode("a+b") == "a b");
    CHECK(url_decode("%2b%2B") == "++");
    CHECK(url_decode("%E2%82%AC") == "\xE2\x82\xAC");
    CHECK(url_decode("") == "");
  }
  SUBCASE("bad escapes") {
    CHECK_FALSE(url_decode("%").has_value());
    CHECK_FALSE(url_decode("%2").has_value());
    CHECK_FALSE(url_decode("abc%").has_value());
    CHECK_FALSE(url_decode("%zz").has_value());
    CHECK_FALSE(url_decode("%2g").has_value());
  }
}

TEST_CASE("util::url_encode") {
  using evstream::url_encode;

  SUBCASE("unreserved characters stay") {
    CHECK(url_encode("AZaz09-_.~") == "AZaz09-_.~");
  }
  SUBCASE("everything else is escaped in upper-case hex") {
    CHECK(url_encode("a b&c=d/e?f+g%") == "a%20b%26c%3Dd%2Fe%3Ff%2Bg%25");
    CHECK(url_encode("\xE2\x82\xAC") == "%E2%82%AC");
    CHECK(url_encode(std::string(1, '\0')) == "%00");
  }
  SUBCASE("round-trips through url_decode") {
    std::string all;
    for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
    CHECK(evstream::url_decode(url_encode(all)) == all);
  }
}
