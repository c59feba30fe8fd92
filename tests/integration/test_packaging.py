"""The Debian package's sources stay true to the binary, without building or installing a package.

- packaging/serve.toml: valid TOML; sets only host, port and db; lists every `serve --help`
  option (commented out, with a description) and nothing that is not one.
- cmake/systemd_unit.cmake: the packaged unit derived from examples/evstream.service runs
  /usr/bin/evstream as the static evstream user, keeps the example's arguments (whatever they are),
  and fails loudly when a substitution no longer applies.
- cmake/debian_changelog.cmake: CHANGELOG.md as a Debian changelog whose latest entry is the
  CMakeLists.txt project version, every item kept, lines within 80 columns.
- packaging/postinst, prerm, postrm: executable POSIX sh.

The package itself (contents, lintian, install, serve, purge) is `make deb-test`
(tests/packaging/deb_test.sh), which changes the system and so is not run here.
"""
import os
import re
import subprocess
import tempfile
import tomllib
import unittest

from evtest import evstream_bin, require_tool

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
PACKAGING = os.path.join(ROOT, "packaging")
SERVE_TOML = os.path.join(PACKAGING, "serve.toml")
EXAMPLE_UNIT = os.path.join(ROOT, "examples", "evstream.service")
DERIVE = os.path.join(ROOT, "cmake", "systemd_unit.cmake")
TIMEOUT = 30  # seconds for any one external command

# Options of `serve --help` that are not settings of the file.
NOT_SETTINGS = {"help", "config", "print-config"}


def run(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, **kwargs)


def serve_options():
    out = run([evstream_bin(), "serve", "--help"])
    assert out.returncode == 0, out.stderr
    return set(re.findall(r"^  (?:-\w,)?--([a-z][\w-]*)", out.stdout, flags=re.M)) - NOT_SETTINGS


class ServeTomlTest(unittest.TestCase):
    def setUp(self):
        with open(SERVE_TOML, encoding="utf-8") as f:
            self.text = f.read()

    def test_active_settings(self):
        self.assertEqual(tomllib.loads(self.text),
                         {"host": "127.0.0.1", "port": 8000, "db": "/var/lib/evstream/evstream.db"})

    def test_every_serve_option_is_listed_with_a_description(self):
        lines = self.text.splitlines()
        listed = {}
        for i, line in enumerate(lines):
            m = re.match(r"^(?:# )?([a-z][\w-]*) = \S", line)
            if m:
                listed.setdefault(m.group(1), i)
        options = serve_options()
        self.assertEqual(sorted(set(listed) - options), [], "settings that serve does not have")
        self.assertEqual(sorted(options - set(listed)), [], "serve options missing from serve.toml")
        for key, i in listed.items():
            # Each setting (or a pair like cert/key) follows a comment saying what it does.
            j = i - 1
            while j >= 0 and re.match(r"^(?:# )?[a-z][\w-]* = ", lines[j]):
                j -= 1
            self.assertTrue(j >= 0 and lines[j].startswith("# "), f"{key} has no description")

    def test_commented_values_parse(self):
        # Uncommenting any one setting gives valid TOML of the type serve expects.
        for line in self.text.splitlines():
            m = re.match(r"^# ([a-z][\w-]*) = (.*)$", line)
            if m:
                value = tomllib.loads(f"{m.group(1)} = {m.group(2)}")[m.group(1)]
                self.assertIsInstance(value, (str, int, list), line)


class SystemdUnitDerivationTest(unittest.TestCase):
    def setUp(self):
        self.cmake = require_tool("cmake")
        self.tmp = tempfile.mkdtemp(prefix="evstream-it-unit-")
        self.addCleanup(subprocess.run, ["rm", "-rf", self.tmp])

    def derive(self, text):
        source = os.path.join(self.tmp, "example.service")
        output = os.path.join(self.tmp, "packaged.service")
        with open(source, "w", encoding="utf-8") as f:
            f.write(text)
        result = run([self.cmake, f"-DINPUT={source}", f"-DOUTPUT={output}", "-P", DERIVE])
        if result.returncode != 0:
            return None, result.stderr
        with open(output, encoding="utf-8") as f:
            return f.read(), result.stderr

    @staticmethod
    def directives(text):
        out = {}
        for line in text.splitlines():
            if line and not line.startswith(("#", "[")) and "=" in line:
                key, value = line.split("=", 1)
                out.setdefault(key, []).append(value)
        return out

    def test_the_example_becomes_the_packaged_unit(self):
        with open(EXAMPLE_UNIT, encoding="utf-8") as f:
            example = f.read()
        unit, err = self.derive(example)
        self.assertIsNotNone(unit, err)
        self.assertNotIn("/usr/local", unit)
        packaged, original = self.directives(unit), self.directives(example)
        self.assertEqual(packaged["User"], ["evstream"])
        self.assertEqual(packaged["Group"], ["evstream"])
        self.assertNotIn("DynamicUser", packaged)
        exec_start = original["ExecStart"][0]
        self.assertEqual(packaged["ExecStart"],
                         [exec_start.replace("/usr/local/bin/evstream", "/usr/bin/evstream")])
        # Everything else, hardening included, is the example's.
        for key in set(original) - {"ExecStart", "DynamicUser"}:
            self.assertEqual(packaged[key], original[key], key)
        self.assertIn("[Install]\nWantedBy=multi-user.target", unit)

    def test_only_the_path_prefix_of_exec_start_changes(self):
        text = ("[Unit]\nDescription=x\n[Service]\n"
                "ExecStart=/usr/local/bin/evstream serve --config /etc/evstream/serve.toml\n"
                "DynamicUser=yes\nStateDirectory=evstream\n")
        unit, err = self.derive(text)
        self.assertIsNotNone(unit, err)
        self.assertEqual(self.directives(unit)["ExecStart"],
                         ["/usr/bin/evstream serve --config /etc/evstream/serve.toml"])

    def test_a_substitution_that_no_longer_applies_fails(self):
        for broken, message in (
                ("[Unit]\n[Service]\nExecStart=/opt/evstream serve\nDynamicUser=yes\n",
                 "no ExecStart=/usr/local/bin/evstream"),
                ("[Unit]\n[Service]\nExecStart=/usr/local/bin/evstream serve\nUser=x\n",
                 "no DynamicUser=yes"),
                ("[Service]\nExecStart=/usr/local/bin/evstream serve\nDynamicUser=yes\n",
                 "no [Unit] section")):
            unit, err = self.derive(broken)
            self.assertIsNone(unit, broken)
            self.assertIn(message, " ".join(err.split()))  # cmake wraps its messages


class DebianChangelogTest(unittest.TestCase):
    def test_changelog_md_becomes_a_debian_changelog_of_the_project_version(self):
        cmake = require_tool("cmake")
        with open(os.path.join(ROOT, "CMakeLists.txt"), encoding="utf-8") as f:
            version = re.search(r"^project\(evstream VERSION ([0-9.]+)", f.read(), re.M).group(1)
        with tempfile.TemporaryDirectory(prefix="evstream-it-changelog-") as tmp:
            output = os.path.join(tmp, "changelog")
            result = run([cmake, f"-DINPUT={os.path.join(ROOT, 'CHANGELOG.md')}",
                          f"-DOUTPUT={output}", "-DMAINTAINER=evstream maintainers <m@example.org>",
                          "-P", os.path.join(ROOT, "cmake", "debian_changelog.cmake")],
                         env=dict(os.environ, SOURCE_DATE_EPOCH="1764633600"))
            self.assertEqual(result.returncode, 0, result.stderr)
            with open(output, encoding="utf-8") as f:
                text = f.read()
        self.assertTrue(text.startswith(f"evstream ({version}) "), text[:200])
        self.assertRegex(text, r"\n -- evstream maintainers <m@example.org>  "
                               r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000\n$")
        self.assertEqual([line for line in text.splitlines() if len(line) > 80], [])
        with open(os.path.join(ROOT, "CHANGELOG.md"), encoding="utf-8") as f:
            items = len(re.findall(r"^- ", f.read(), re.M))
        self.assertEqual(len(re.findall(r"^  \* ", text, re.M)), items)


class MaintainerScriptsTest(unittest.TestCase):
    def test_scripts_are_executable_posix_sh(self):
        for name in ("postinst", "prerm", "postrm"):
            path = os.path.join(PACKAGING, name)
            self.assertTrue(os.access(path, os.X_OK), f"packaging/{name} is not executable")
            with open(path, encoding="utf-8") as f:
                self.assertEqual(f.readline(), "#!/bin/sh\n", name)
            result = run(["sh", "-n", path])
            self.assertEqual(result.returncode, 0, result.stderr)

    def test_conffiles_lists_the_config(self):
        with open(os.path.join(PACKAGING, "conffiles"), encoding="utf-8") as f:
            self.assertEqual(f.read(), "/etc/evstream/serve.toml\n")


if __name__ == "__main__":
    unittest.main()
