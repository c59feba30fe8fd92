"""The tree is the architecture: core/ by part, and includes only point down or sideways.

    util/   -> (nothing of ours)
    wire/   -> util/
    store/  -> wire/, util/
    server/ -> store/, wire/, util/
    client/ -> store/ (replay --db reads the file), wire/, util/

server/ and client/ never include each other: what both ends need belongs in wire/. tests/core/
mirrors the folders. No binary, no server: this reads the sources only.
"""
import os
import re
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
CORE = os.path.join(ROOT, "core")

ALLOWED = {
    "util": {"util"},
    "wire": {"wire", "util"},
    "store": {"store", "wire", "util"},
    "server": {"server", "store", "wire", "util"},
    "client": {"client", "store", "wire", "util"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)
SOURCE = (".cpp", ".hpp", ".h")


def sources(top):
    for folder, _, files in os.walk(top):
        for name in sorted(files):
            if name.endswith(SOURCE):
                yield os.path.join(folder, name)


def violations(root):
    """Every include under root/core/ that breaks the rule, as one readable line each."""
    core = os.path.join(root, "core")
    bad = []
    for path in sources(core):
        rel = os.path.relpath(path, root)
        part = os.path.relpath(path, core).split(os.sep)[0]
        if part not in ALLOWED:
            bad.append(f"{rel}: not inside a part folder ({', '.join(sorted(ALLOWED))})")
            continue
        with open(path, encoding="utf-8") as f:
            targets = INCLUDE.findall(f.read())
        for target in targets:
            if not target.startswith("core/") or target.count("/") != 2:
                bad.append(f"{rel}: \"{target}\" is not \"core/<part>/<file>\"")
            elif not os.path.isfile(os.path.join(root, target)):
                bad.append(f"{rel}: {target} does not exist")
            elif target.split("/")[1] not in ALLOWED[part]:
                bad.append(f"{rel} includes {target}: {part}/ may include only "
                           f"{', '.join(sorted(ALLOWED[part]))}")
    return sorted(bad)


class LayoutTest(unittest.TestCase):
    def test_core_holds_only_part_folders(self):
        entries = sorted(e for e in os.listdir(CORE) if not e.startswith("."))
        self.assertEqual([e for e in entries if e != "README.md"], sorted(ALLOWED))
        for part in ALLOWED:
            self.assertTrue(os.path.isfile(os.path.join(CORE, part, "README.md")),
                            f"core/{part}/ has no README.md saying what it owns")

    def test_includes_point_down_or_sideways(self):
        bad = violations(ROOT)
        self.assertEqual(bad, [], "\n" + "\n".join(bad))

    def test_the_checker_catches_an_upward_include(self):
        with tempfile.TemporaryDirectory() as root:
            def write(rel, text=""):
                os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
                with open(os.path.join(root, rel), "w", encoding="utf-8") as f:
                    f.write(text)
            write("core/client/follower.hpp")
            write("core/wire/event.hpp", '#include "core/util/log.hpp"\n')
            write("core/util/log.hpp")
            write("core/store/store.hpp", '#include "core/wire/event.hpp"\n')
            self.assertEqual(violations(root), [])
            write("core/server/hub.hpp", '#include "core/client/follower.hpp"\n'
                                         '#include "hub_impl.hpp"\n')
            write("core/store/wal.hpp", '#  include "core/server/hub.hpp"\n')
            self.assertEqual(violations(root), [
                'core/server/hub.hpp includes core/client/follower.hpp: server/ may include only '
                'server, store, util, wire',
                'core/server/hub.hpp: "hub_impl.hpp" is not "core/<part>/<file>"',
                "core/store/wal.hpp includes core/server/hub.hpp: store/ may include only "
                "store, util, wire",
            ])

    def test_unit_tests_mirror_the_parts(self):
        tests_core = os.path.join(ROOT, "tests", "core")
        for path in sources(tests_core):
            rel = os.path.relpath(path, tests_core).split(os.sep)
            if len(rel) == 1:
                continue  # main.cpp and shared test helpers
            self.assertIn(rel[0], ALLOWED, f"tests/core/{rel[0]}/ mirrors no part of core/")
            if rel[-1].startswith("test_"):
                module = rel[-1][len("test_"):-len(".cpp")]
                folder = os.path.join(CORE, rel[0])
                self.assertTrue(
                    any(n.startswith(module) for n in os.listdir(folder)),
                    f"tests/core/{'/'.join(rel)} tests no module of core/{rel[0]}/")


if __name__ == "__main__":
    unittest.main()
