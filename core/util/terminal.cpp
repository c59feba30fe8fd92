#include "core/util/terminal.hpp"

#include <sys/ioctl.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdlib>
#include <cstring>

namespace evstream {

namespace {

struct Range {
  char32_t first;
  char32_t last;
};

// Characters a terminal shows in 2 columns: the East Asian wide and fullwidth blocks and the emoji
// shown as pictures by default, by block (as terminals draw them). Sorted.
constexpr std::array<Range, 59> kWide{{
    {0x1100, 0x115F},   {0x231A, 0x231B},   {0x2329, 0x232A},   {0x23E9, 0x23EC},
    {0x23F0, 0x23F0},   {0x23F3, 0x23F3},   {0x25FD, 0x25FE},   {0x2614, 0x2615},
    {0x2648, 0x2653},   {0x267F, 0x267F},   {0x2693, 0x2693},   {0x26A1, 0x26A1},
    {0x26AA, 0x26AB},   {0x26BD, 0x26BE},   {0x26C4, 0x26C5},   {0x26CE, 0x26CE},
    {0x26D4, 0x26D4},   {0x26EA, 0x26EA},   {0x26F2, 0x26F3},   {0x26F5, 0x26F5},
    {0x26FA, 0x26FA},   {0x26FD, 0x26FD},   {0x2705, 0x2705},   {0x270A, 0x270B},
    {0x2728, 0x2728},   {0x274C, 0x274C},   {0x274E, 0x274E},   {0x2753, 0x2755},
    {0x2757, 0x2757},   {0x2795, 0x2797},   {0x27B0, 0x27B0},   {0x27BF, 0x27BF},
    {0x2B1B, 0x2B1C},   {0x2B50, 0x2B50},   {0x2B55, 0x2B55},   {0x2E80, 0x303E},
    {0x3041, 0x4DBF},   {0x4E00, 0xA4CF},   {0xA960, 0xA97F},   {0xAC00, 0xD7A3},
    {0xF900, 0xFAFF},   {0xFE10, 0xFE19},   {0xFE30, 0xFE6F},   {0xFF00, 0xFF60},
    {0xFFE0, 0xFFE6},   {0x16FE0, 0x18D08}, {0x1B000, 0x1B2FF}, {0x1F004, 0x1F004},
    {0x1F0CF, 0x1F0CF}, {0x1F18E, 0x1F18E}, {0x1F191, 0x1F19A}, {0x1F200, 0x1F251},
    {0x1F300, 0x1F64F}, {0x1F680, 0x1F6FF}, {0x1F7E0, 0x1F7EB}, {0x1F90C, 0x1F9FF},
    {0x1FA70, 0x1FAFF}, {0x20000, 0x2FFFD}, {0x30000, 0x3FFFD},
}};

// Characters that take no column of their own: combining marks, zero-width spaces and joiners,
// variation selectors, emoji skin-tone modifiers and tags.
constexpr std::array<Range, 17> kZero{{
    {0x0300, 0x036F},
    {0x0483, 0x0489},
    {0x0591, 0x05BD},
    {0x0610, 0x061A},
    {0x064B, 0x065F},
    {0x0670, 0x0670},
    {0x06D6, 0x06DC},
    {0x1AB0, 0x1AFF},
    {0x1DC0, 0x1DFF},
    {0x200B, 0x200F},
    {0x2060, 0x2064},
    {0x20D0, 0x20FF},
    {0xFE00, 0xFE0F},
    {0xFE20, 0xFE2F},
    {0xFEFF, 0xFEFF},
    {0x1F3FB, 0x1F3FF},
    {0xE0000, 0xE01EF},
}};

template <std::size_t N>
bool in(const std::array<Range, N>& ranges, char32_t c) {
  const auto it = std::upper_bound(ranges.begin(), ranges.end(), c,
                                   [](char32_t value, const Range& r) { return value < r.first; });
  return it != ranges.begin() && c <= std::prev(it)->last;
}

int char_width(char32_t c) {
  if (c < 0x20 || (c >= 0x7F && c < 0xA0)) return 0;  // control characters
  if (c < 0x300) return 1;
  if (in(kZero, c)) return 0;
  if (in(kWide, c)) return 2;
  return 1;
}

// One unit of a line: a character, an escape sequence or a line break.
struct Glyph {
  std::size_t bytes = 1;
  std::size_t width = 0;
  bool line_break = false;
};

// The bytes of the ANSI escape sequence at text[i] (text[i] is ESC): CSI "ESC [ params final",
// else ESC and one more byte.
std::size_t escape_length(std::string_view text, std::size_t i) {
  if (i + 1 >= text.size()) return 1;
  if (text[i + 1] != '[') return 2;
  std::size_t j = i + 2;
  while (j < text.size() &&
         (static_cast<unsigned char>(text[j]) < 0x40 || static_cast<unsigned char>(text[j]) > 0x7E))
    ++j;
  return std::min(j + 1, text.size()) - i;
}

// The UTF-8 character at text[i]: its code point and length, or nothing (length 0) when the bytes
// there are not a valid encoding.
std::pair<char32_t, std::size_t> decode(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  std::size_t length = 0;
  char32_t c = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
    c = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    c = lead & 0x0F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    c = lead & 0x07;
  } else {
    return {0, 0};
  }
  if (i + length > text.size()) return {0, 0};
  for (std::size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return {0, 0};
    c = (c << 6) | (byte(i + k) & 0x3F);
  }
  const char32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
  if (c < smallest[length] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return {0, 0};
  return {c, length};
}

Glyph next_glyph(std::string_view text, std::size_t i, std::size_t column) {
  const auto lead = static_cast<unsigned char>(text[i]);
  if (lead == '\n' || lead == '\r') return {1, 0, true};
  if (lead == '\t') return {1, 8 - column % 8, false};
  if (lead == 0x1B) return {escape_length(text, i), 0, false};
  if (lead < 0x80) return {1, static_cast<std::size_t>(char_width(lead)), false};
  const auto [c, length] = decode(text, i);
  if (length == 0) return {1, 1, false};  // shown as one replacement character
  return {length, static_cast<std::size_t>(char_width(c)), false};
}

}  // namespace

std::size_t terminal_columns(int fd) {
  winsize size{};
  if (ioctl(fd, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  if (const char* env = std::getenv("COLUMNS")) {
    std::size_t columns = 0;
    const char* end = env + std::strlen(env);
    const auto [ptr, ec] = std::from_chars(env, end, columns);
    if (ec == std::errc() && ptr == end && columns > 0 && columns <= 100'000) return columns;
  }
  return 80;
}

std::size_t display_width(std::string_view text) {
  std::size_t column = 0;
  for (std::size_t i = 0; i < text.size();) {
    const Glyph glyph = next_glyph(text, i, column);
    column += glyph.width;
    i += glyph.bytes;
  }
  return column;
}

std::string fit_to_width(std::string_view line, std::size_t columns) {
  const std::size_t budget = columns > 0 ? columns - 1 : 0;  // what is left beside the "…"
  std::size_t column = 0;
  std::size_t keep = 0;  // bytes of the longest start within the budget
  bool cut = false;
  for (std::size_t i = 0; i < line.size();) {
    const Glyph glyph = next_glyph(line, i, column);
    if (glyph.line_break) {
      cut = true;
      break;
    }
    column += glyph.width;
    i += glyph.bytes;
    if (column <= budget) keep = i;
    if (column > columns) {
      cut = true;
      break;
    }
  }
  if (!cut) return std::string(line);
  std::string out(line.substr(0, keep));
  out += "\u2026";
  if (out.find('\x1b') != std::string::npos) out += "\x1b[0m";
  return out;
}

}  // namespace evstream
