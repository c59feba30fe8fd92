#include "core/util/terminal.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <optional>
#include <string>

using namespace evstream;

namespace {

// Sets (or unsets, with nullptr) an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : m_name(name) {
    if (const char* old = std::getenv(name)) m_old = old;
    if (value != nullptr) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (m_old) {
      setenv(m_name, m_old->c_str(), 1);
    } else {
      unsetenv(m_name);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* m_name;
  std::optional<std::string> m_old;
};

}  // namespace

TEST_CASE("util::display_width") {
  CHECK(display_width("") == 0);
  CHECK(display_width("abc {\"n\":1}") == 11);
  CHECK(display_width("caf\u00e9") == 4);             // é: 2 bytes, 1 column
  CHECK(display_width("cafe\u0301") == 4);            // e + combining acute
  CHECK(display_width("\u2603") == 1);                // snowman: narrow
  CHECK(display_width("\u65e5\u672c") == 4);          // CJK: 2 columns each
  CHECK(display_width("\uac00") == 2);                // Hangul syllable
  CHECK(display_width("\U0001F600") == 2);            // emoji
  CHECK(display_width("\U0001F44D\U0001F3FD") == 2);  // emoji + skin tone modifier
  CHECK(display_width("a\u200bb") == 2);              // zero-width space
  CHECK(display_width("\x1b[33m#42\x1b[0m") == 3);    // colours take no column
  CHECK(display_width("a\tb") == 9);                  // tab to column 8
  CHECK(display_width("\xff\xfe") == 2);              // invalid bytes: one column each
  CHECK(display_width("\xe6\x97") == 2);              // a truncated character
  CHECK(display_width("\xed\xa0\x80") == 3);          // an encoded surrogate is invalid
}

TEST_CASE("util::fit_to_width") {
  SUBCASE("a line that fits is left alone") {
    CHECK(fit_to_width("", 10).empty());
    CHECK(fit_to_width("0123456789", 10) == "0123456789");
    CHECK(fit_to_width("\x1b[33m#1\x1b[0m abc", 6) == "\x1b[33m#1\x1b[0m abc");
  }
  SUBCASE("a longer one is cut to the width, the last column an ellipsis") {
    CHECK(fit_to_width("0123456789a", 10) == "012345678\u2026");
    CHECK(display_width(fit_to_width("0123456789a", 10)) == 10);
    CHECK(fit_to_width("abcdef", 1) == "\u2026");
  }
  SUBCASE("never in the middle of a UTF-8 character") {
    CHECK(fit_to_width("caf\u00e9 au lait", 5) == "caf\u00e9\u2026");
    CHECK(fit_to_width("\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9", 4) == "\u00e9\u00e9\u00e9\u2026");
    // A wide character that would cross the limit goes whole: 3 columns then the ellipsis.
    CHECK(fit_to_width("a\u65e5\u672c\u8a9e", 5) == "a\u65e5\u2026");
    CHECK(fit_to_width("\U0001F600\U0001F600\U0001F600", 4) == "\U0001F600\u2026");
    // A combining mark stays with its letter.
    CHECK(fit_to_width("abe\u0301cdef", 4) == "abe\u0301\u2026");
    for (std::size_t width = 1; width < 30; ++width) {
      const std::string cut =
          fit_to_width("d\u00e9tection \u65e5\u672c \U0001F600 \u2603 end", width);
      CHECK(display_width(cut) <= width);
    }
  }
  SUBCASE("colours are not cut and do not run on") {
    const std::string line = "\x1b[2m17:01:12\x1b[0m  \x1b[33m#42\x1b[0m  {\"camera\":\"cam-1\"}";
    CHECK(fit_to_width(line, 16) == "\x1b[2m17:01:12\x1b[0m  \x1b[33m#42\x1b[0m  \u2026\x1b[0m");
    CHECK(fit_to_width(line, 5) == "\x1b[2m17:0\u2026\x1b[0m");
    CHECK(fit_to_width("plain text here", 6) == "plain\u2026");
  }
  SUBCASE("a line break ends the line") {
    CHECK(fit_to_width("first\nsecond", 80) == "first\u2026");
    CHECK(fit_to_width("first\r\n", 80) == "first\u2026");
  }
}

TEST_CASE("util::terminal_columns") {
  const int fd = open("/dev/null", O_WRONLY);  // not a terminal: the fallbacks
  REQUIRE(fd >= 0);
  {
    ScopedEnv columns("COLUMNS", "132");
    CHECK(terminal_columns(fd) == 132);
  }
  for (const char* bad : {"", "0", "-5", "80x", "wide"}) {
    ScopedEnv columns("COLUMNS", bad);
    CHECK(terminal_columns(fd) == 80);
  }
  {
    ScopedEnv columns("COLUMNS", nullptr);
    CHECK(terminal_columns(fd) == 80);
  }
  close(fd);
}
