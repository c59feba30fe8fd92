#pragma once
// Lines that fit a terminal: its width, the columns a UTF-8 text takes there, and a line cut to a
// width with "…" (what `tail` does on a terminal, like `kubectl get` or `journalctl`).
#include <cstddef>
#include <string>
#include <string_view>

namespace evstream {

// The width in columns of the terminal on `fd` (TIOCGWINSZ); when that is not known (not a
// terminal, or one that reports 0 columns), $COLUMNS if it is a positive number, else 80.
std::size_t terminal_columns(int fd);

// The columns `text` takes on a terminal: 1 per character, 2 for East Asian wide characters and
// emoji, 0 for combining marks, zero-width characters, control characters and ANSI escape
// sequences ("\x1b[33m"); a tab moves to the next multiple of 8; an invalid UTF-8 byte takes 1 (a
// terminal shows it as one replacement character).
std::size_t display_width(std::string_view text);

// `line` when it takes at most `columns` columns and holds no line break; otherwise its longest
// start that takes at most `columns - 1` columns, then "…" (and "\x1b[0m" when the kept part has
// an escape sequence, so a colour does not run on). Never splits a UTF-8 character or an escape
// sequence; a line break ends the line ("a\nb" becomes "a…").
std::string fit_to_width(std::string_view line, std::size_t columns);

}  // namespace evstream
