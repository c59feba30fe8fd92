"""Docs stay true to the binary: man/evstream.1 and the bash/zsh/fish completions.

The subcommands and options are read from the real `$EVSTREAM_BIN --help` / `SUB --help`, so adding
an option to the CLI without documenting it (man page, all three completions) fails here.
Needs groff, bash, zsh and fish (Makefile PACKAGES; `make deps` installs them): a missing tool is a
failure with a clear message, never a silent skip. No server is started.
"""
import os
import re
import subprocess
import tempfile
import unittest

from evtest import evstream_bin, require_tool

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
MAN_PAGE = os.path.join(ROOT, "man", "evstream.1")
BASH_COMPLETION = os.path.join(ROOT, "completions", "evstream.bash")
ZSH_COMPLETION = os.path.join(ROOT, "completions", "_evstream")
FISH_COMPLETION = os.path.join(ROOT, "completions", "evstream.fish")
TIMEOUT = 30  # seconds for any one external command

# Options whose values the completions must offer (beyond the {a,b} enums parsed from --help).
FILE_OPTIONS = {"serve": ["--db", "--cert", "--key", "--config"], "replay": ["--db", "--config"],
                "tail": ["--config"]}






def run(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, **kwargs)


# ---------------------------------------------------------------------------------------------
# What the binary says

# "  -n,--last INT:NONNEGATIVE Excludes: --since" -> ("-n", "--last")
OPTION_LINE = re.compile(r"^  (?:(-[A-Za-z0-9]),)?(--[A-Za-z0-9][\w-]*)(.*)$")
# "--port INT:INT in [0 - 65535]=8000", "--durability TEXT:{normal,full}=normal", "--rate FLOAT:X=10"
DEFAULT = re.compile(r"^ [A-Z]+(?::(?:\{[^}]*\}|[A-Z]+(?: in \[[^\]]*\])?))?=(\S+)")
ENUM = re.compile(r"^ [A-Z]+:\{([^}]*)\}")


class Option:
    def __init__(self, short, long, rest):
        self.short = short
        self.long = long
        default = DEFAULT.match(rest)
        self.default = default.group(1) if default else None
        enum = ENUM.match(rest)
        self.choices = enum.group(1).split(",") if enum else None

    def names(self):
        return [n for n in (self.short, self.long) if n]


def parse_help(text, section):
    """Lines of one `Section:` of CLI11 help output (up to the next unindented line)."""
    lines, inside = [], False
    for line in text.splitlines():
        if line.strip() == section + ":":
            inside = True
        elif inside and line and not line.startswith(" "):
            break
        elif inside:
            lines.append(line)
    return lines


_HELP_CACHE = {}


def cli():
    """{subcommand: [Option]} as printed by the binary's --help."""
    if "cli" in _HELP_CACHE:
        return _HELP_CACHE["cli"]
    binary = evstream_bin()
    top = run([binary, "--help"])
    if top.returncode != 0:
        raise AssertionError(f"evstream --help exited {top.returncode}: {top.stderr}")
    subs = [m.group(1) for line in parse_help(top.stdout, "Subcommands")
            if (m := re.match(r"^  (\S+)", line))]
    if not subs:
        raise AssertionError(f"no subcommands found in evstream --help:\n{top.stdout}")
    result = {}
    for sub in subs:
        out = run([binary, sub, "--help"])
        if out.returncode != 0:
            raise AssertionError(f"evstream {sub} --help exited {out.returncode}: {out.stderr}")
        options = [Option(m.group(1), m.group(2), m.group(3))
                   for line in parse_help(out.stdout, "Options")
                   if (m := OPTION_LINE.match(line))]
        if not any(o.long == "--help" for o in options):
            raise AssertionError(f"could not parse the options of evstream {sub} --help:\n{out.stdout}")
        result[sub] = options
    _HELP_CACHE["cli"] = result
    return result


def mentions(text, name):
    """`name` (an option) occurs in text as a whole word, not as part of a longer option."""
    return re.search(r"(?<![\w-])" + re.escape(name) + r"(?![\w-])", text) is not None


def read(path):
    if not os.path.exists(path):
        raise AssertionError(f"{os.path.relpath(path, ROOT)} is missing")
    with open(path, encoding="utf-8") as f:
        return f.read()


# ---------------------------------------------------------------------------------------------
# The man page

def roff_to_text(roff):
    """Roughly what a reader sees: roff escapes resolved, font changes and macros' dots dropped."""
    text = re.sub(r"^\.\\\".*$", "", roff, flags=re.M)  # comments
    for escape, char in ((r"\-", "-"), (r"\(aq", "'"), (r"\(dq", '"'), (r"\(lq", '"'),
                         (r"\(rq", '"'), (r"\~", " "), (r"\e", "\\"), (r"\c", ""), (r"\&", ""),
                         (r"\ ", " ")):
        text = text.replace(escape, char)
    text = re.sub(r"\\f[BIRP]", "", text)
    # .BR/.IR/.RB/.BI alternate fonts without spaces: join their arguments.
    def join_args(match):
        return "".join(quoted or bare for quoted, bare in re.findall(r'"([^"]*)"|(\S+)', match.group(2)))
    text = re.sub(r"^\.(BR|RB|IR|RI|BI|IB)\s+(.*)$", join_args, text, flags=re.M)
    text = re.sub(r"^\.(?:B|I|SM)\s+", "", text, flags=re.M)
    return text


def man_sections(roff):
    """{".SH NAME" / ".SS evstream serve": body} for each section and subsection."""
    parts = re.split(r"^(\.S[HS] .*)$", roff, flags=re.M)
    return {parts[i].strip().replace('"', ""): parts[i + 1] for i in range(1, len(parts), 2)}


def man_paragraphs(body):
    """The .TP paragraphs of a subsection, as (tag line, whole paragraph) pairs."""
    paragraphs = [p.strip() for p in re.split(r"^\.TP[ \t]*$", body, flags=re.M)[1:]]
    return [(p.split("\n", 1)[0], p) for p in paragraphs]


class ManPageTest(unittest.TestCase):
    def setUp(self):
        self.roff = read(MAN_PAGE)
        self.sections = man_sections(self.roff)

    def test_groff_lints_clean(self):
        groff = require_tool("groff")
        out = run([groff, "-man", "-ww", "-z", MAN_PAGE])
        self.assertEqual((out.returncode, out.stdout + out.stderr), (0, ""),
                         "groff -man -ww -z man/evstream.1 must print nothing")

    def test_renders_for_a_terminal(self):
        groff = require_tool("groff")
        out = run([groff, "-man", "-ww", "-Tutf8", "-rLL=80n", MAN_PAGE],
                  env=dict(os.environ, GROFF_NO_SGR="1"))
        self.assertEqual((out.returncode, out.stderr), (0, ""))
        text = re.sub(r".\x08", "", out.stdout)  # overstrike bold/underline
        for heading in ("NAME", "SYNOPSIS", "DESCRIPTION", "EXIT STATUS", "ENVIRONMENT", "FILES",
                        "EXAMPLES", "SEE ALSO"):
            self.assertTrue(re.search(r"^" + heading + r"$", text, re.M), f"{heading} not rendered")
        self.assertRegex(text, r"evstream\s+-\s+publish", "NAME line not rendered")
        self.assertGreater(len(text.splitlines()), 200, "rendered page is suspiciously short")

    def test_required_sections(self):
        for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "EXIT STATUS", "ENVIRONMENT", "FILES",
                        "EXAMPLES", "SEE ALSO"):
            self.assertIn(".SH " + section, self.sections)
        self.assertTrue(any("PROTOCOL" in s for s in self.sections), "no WebSocket protocol section")
        self.assertTrue(any("HTTP" in s for s in self.sections), "no HTTP endpoints section")

    def test_every_subcommand_has_a_subsection_and_a_synopsis(self):
        synopsis = self.sections[".SH SYNOPSIS"]
        for sub in cli():
            with self.subTest(sub=sub):
                self.assertIn(".SS evstream " + sub, self.sections, f"no `.SS evstream {sub}`")
                self.assertIn(".B evstream " + sub, synopsis, f"{sub} missing from SYNOPSIS")

    def test_every_option_is_documented_in_its_subsection_with_its_default(self):
        for sub, options in cli().items():
            body = self.sections.get(".SS evstream " + sub, "")
            paragraphs = man_paragraphs(body)
            synopsis = roff_to_text(self.sections[".SH SYNOPSIS"].split(".B evstream " + sub, 1)[-1]
                                    .split(".PP", 1)[0])
            for option in options:
                if option.long == "--help":
                    continue
                with self.subTest(sub=sub, option=option.long):
                    for name in option.names():
                        self.assertTrue(mentions(roff_to_text(body), name),
                                        f"{name} of `evstream {sub}` is not in `.SS evstream {sub}`")
                    self.assertTrue(mentions(synopsis, option.long),
                                    f"{option.long} missing from the SYNOPSIS of {sub}")
                    tagged = [roff_to_text(p) for tag, p in paragraphs
                              if mentions(roff_to_text(tag), option.long)]
                    self.assertTrue(tagged, f"no .TP paragraph tagged {option.long} in {sub}")
                    if option.default is not None:
                        self.assertIn(option.default, tagged[0],
                                      f"{sub} {option.long}: default {option.default} not in the man page")
                    for choice in option.choices or []:
                        self.assertIn(choice, tagged[0], f"{sub} {option.long}: value {choice}")
        self.assertTrue(mentions(roff_to_text(self.roff), "--help"))
        self.assertTrue(mentions(roff_to_text(self.roff), "--version"))

    def test_exit_status_environment_files(self):
        exit_status = roff_to_text(self.sections[".SH EXIT STATUS"])
        for code in ("0", "1", "2", "69", "130"):
            self.assertRegex(exit_status, re.compile(r"^" + code + r"$", re.M), f"exit status {code}")
        environment = roff_to_text(self.sections[".SH ENVIRONMENT"])
        for name in ("EVSTREAM_URL", "EVSTREAM_TOKEN", "NO_COLOR", "EVSTREAM_INSECURE"):
            self.assertIn(name, environment)
        files = roff_to_text(self.sections[".SH FILES"])
        for name in ("evstream.db", "evstream.db-wal", "evstream.db-shm"):
            self.assertIn(name, files)
        examples = roff_to_text(self.sections[".SH EXAMPLES"])
        for example in ("| evstream publish", "evstream tail | jq .data.camera_id", "--format",
                        "evstream loadtest"):
            self.assertIn(example, examples)


# ---------------------------------------------------------------------------------------------
# bash

BASH_DRIVER = r"""
source "$1" || exit 3
shift
spec=$(complete -p evstream) || exit 4
fn=${spec#*-F }; fn=${fn%% *}
COMP_WORDS=("$@")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_LINE="${COMP_WORDS[*]}"
COMP_POINT=${#COMP_LINE}
COMPREPLY=()
"$fn" evstream "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
printf '%s\n' "${COMPREPLY[@]}"
"""


def bash_complete(words, cwd=None):
    """COMPREPLY for the command line `words` (the last one is the word being completed)."""
    bash = require_tool("bash")
    out = run([bash, "--norc", "--noprofile", "-c", BASH_DRIVER, "bash", BASH_COMPLETION, *words],
              cwd=cwd)
    if out.returncode != 0 or out.stderr:
        raise AssertionError(f"bash completion of {words} failed ({out.returncode}): {out.stderr}")
    return [line for line in out.stdout.splitlines() if line]


class BashCompletionTest(unittest.TestCase):
    def setUp(self):
        read(BASH_COMPLETION)

    def test_syntax(self):
        bash = require_tool("bash")
        out = run([bash, "-n", BASH_COMPLETION])
        self.assertEqual((out.returncode, out.stdout + out.stderr), (0, ""))

    def test_subcommands(self):
        self.assertEqual(bash_complete(["evstream", "se"]), ["serve"])
        self.assertEqual(sorted(bash_complete(["evstream", ""])), sorted(cli()))

    def test_option_prefix(self):
        self.assertEqual(bash_complete(["evstream", "serve", "--dur"]), ["--durability"])
        self.assertEqual(bash_complete(["evstream", "tail", "--no-"]), ["--no-color"])

    def test_durability_values(self):
        self.assertEqual(sorted(bash_complete(["evstream", "serve", "--durability", ""])),
                         ["full", "normal"])
        self.assertEqual(bash_complete(["evstream", "serve", "--durability", "f"]), ["full"])
        # `--durability=` as bash splits it (COMP_WORDBREAKS has '=')
        self.assertEqual(sorted(bash_complete(["evstream", "serve", "--durability", "="])),
                         ["full", "normal"])
        self.assertEqual(bash_complete(["evstream", "serve", "--durability", "=", "n"]), ["normal"])

    def test_log_values(self):
        self.assertEqual(sorted(bash_complete(["evstream", "serve", "--log-format", ""])),
                         ["json", "text"])
        self.assertEqual(sorted(bash_complete(["evstream", "serve", "--log-level", ""])),
                         ["debug", "error", "info", "warn"])

    def test_every_enum_option_offers_exactly_its_values(self):
        for sub, options in cli().items():
            for option in options:
                if option.choices:
                    with self.subTest(sub=sub, option=option.long):
                        self.assertEqual(sorted(bash_complete(["evstream", sub, option.long, ""])),
                                         sorted(option.choices))

    def test_every_option_is_offered(self):
        for sub, options in cli().items():
            with self.subTest(sub=sub):
                offered = set(bash_complete(["evstream", sub, "-"]))
                for option in options:
                    for name in option.names():
                        self.assertIn(name, offered, f"bash: `evstream {sub} -<TAB>` lacks {name}")
                extra = offered - {n for o in options for n in o.names()}
                self.assertFalse(extra, f"bash offers options `evstream {sub}` does not have: {extra}")

    def test_file_options_complete_files(self):
        with tempfile.TemporaryDirectory() as tmp:
            for name in ("events.db", "server.pem"):
                open(os.path.join(tmp, name), "w").close()
            for sub, names in FILE_OPTIONS.items():
                for name in names:
                    with self.subTest(option=name):
                        self.assertEqual(bash_complete(["evstream", sub, name, "ev"], cwd=tmp),
                                         ["events.db"])
                        self.assertEqual(bash_complete(["evstream", sub, name, "ser"], cwd=tmp),
                                         ["server.pem"])

    def test_free_form_values_offer_no_options(self):
        self.assertEqual(bash_complete(["evstream", "serve", "--port", ""]), [])
        self.assertEqual(bash_complete(["evstream", "tail", "--topic", "-"]), [])


# ---------------------------------------------------------------------------------------------
# zsh and fish

def zsh_block(script, sub):
    """The `sub)` ... `;;` case block holding the _arguments specs of one subcommand, or None."""
    match = re.search(r"^\s+" + re.escape(sub) + r"\)\n(.*?)^\s+;;", script, flags=re.M | re.S)
    return match.group(1) if match else None


class ZshCompletionTest(unittest.TestCase):
    def test_syntax(self):
        zsh = require_tool("zsh")
        read(ZSH_COMPLETION)
        out = run([zsh, "-n", ZSH_COMPLETION])
        self.assertEqual((out.returncode, out.stdout + out.stderr), (0, ""))

    def test_every_subcommand_and_option_is_listed(self):
        script = read(ZSH_COMPLETION)
        self.assertTrue(script.startswith("#compdef evstream"))
        blocks = {sub: zsh_block(script, sub) for sub in cli()}
        for sub, options in cli().items():
            with self.subTest(sub=sub):
                self.assertRegex(script, re.compile(r"^\s+'" + sub + r":", re.M),
                                 f"zsh: {sub} is not in the subcommands list")
                self.assertIsNotNone(blocks[sub], f"zsh: no `{sub})` block of options")
                for option in options:
                    for name in option.names():
                        self.assertTrue(mentions(blocks[sub], name), f"zsh: {sub} lacks {name}")
                for option in options:
                    if option.choices:
                        spec = next(line for line in blocks[sub].splitlines()
                                    if mentions(line, option.long))
                        for choice in option.choices:
                            self.assertIn(choice, spec.split("]", 1)[-1],
                                          f"zsh: {sub} {option.long} does not offer {choice}")
        for name in FILE_OPTIONS["serve"]:
            spec = next(line for line in blocks["serve"].splitlines() if mentions(line, name))
            self.assertIn("_files", spec, f"zsh: {name} does not complete files")


def fish_complete(line, cwd=None):
    """The candidates fish offers for `line` (completing its last word)."""
    fish = require_tool("fish")
    out = run([fish, "--no-config", "-c",
               f"source {fish_quote(FISH_COMPLETION)}; or exit 3; complete -C {fish_quote(line)}"],
              cwd=cwd)
    if out.returncode != 0 or out.stderr:
        raise AssertionError(f"fish completion of {line!r} failed ({out.returncode}): {out.stderr}")
    return sorted({entry.split("\t", 1)[0] for entry in out.stdout.splitlines() if entry})


def fish_quote(text):
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class FishCompletionTest(unittest.TestCase):
    def test_syntax(self):
        fish = require_tool("fish")
        read(FISH_COMPLETION)
        out = run([fish, "-n", FISH_COMPLETION])
        self.assertEqual((out.returncode, out.stdout + out.stderr), (0, ""))

    def test_every_subcommand_and_option_is_offered(self):
        self.assertEqual(fish_complete("evstream "), sorted(cli()))
        for sub, options in cli().items():
            with self.subTest(sub=sub):
                offered = set(fish_complete(f"evstream {sub} -"))
                for option in options:
                    for name in option.names():
                        self.assertIn(name, offered, f"fish: `evstream {sub} -<TAB>` lacks {name}")

    def test_values(self):
        self.assertEqual(fish_complete("evstream serve --durability "), ["full", "normal"])
        self.assertEqual(fish_complete("evstream serve --log-level "),
                         ["debug", "error", "info", "warn"])
        for sub, options in cli().items():
            for option in options:
                if option.choices:
                    with self.subTest(sub=sub, option=option.long):
                        self.assertEqual(fish_complete(f"evstream {sub} {option.long} "),
                                         sorted(option.choices))
        self.assertEqual(fish_complete("evstream serve --port "), [])

    def test_file_options_complete_files(self):
        with tempfile.TemporaryDirectory() as tmp:
            open(os.path.join(tmp, "events.db"), "w").close()
            for sub, names in FILE_OPTIONS.items():
                for name in names:
                    with self.subTest(option=name):
                        self.assertEqual(fish_complete(f"evstream {sub} {name} ev", cwd=tmp),
                                         ["events.db"])


if __name__ == "__main__":
    unittest.main()
