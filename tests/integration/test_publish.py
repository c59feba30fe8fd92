"""evstream publish against a real server: events from stdin and from arguments (ids, data kept
byte-for-byte, the summary line), --topic, --key-field, bad-line accounting, exit codes, streaming
of a slow trickle, a kill -9 and restart of the server in the middle of a publish, and throughput."""
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import unittest

from evtest import ClientTestCase, client_env, evstream_bin, free_port, raw_member, strip_ws

SUMMARY = re.compile(r"^evstream publish: published (\d+) events?(?: \(ids? (\d+)(?:-(\d+))?\))?"
                     r"(?:, (\d+) already stored)?, (\d+) rejected$", re.M)

# Data that must come back byte-for-byte (after insignificant whitespace): big and precise
# numbers, escapes and raw unicode, nesting, and lines with extra whitespace.
TRICKY_LINES = [
    '{"camera_id":"cam-1","objects":[{"label":"person","confidence":0.9876543210123456789}],'
    '"big":123456789012345678901234567890,"tiny":1.5e-300,"huge":-2E+400}',
    '  { "description" : "caf\\u00e9 \u2603 \\ud83d\\ude00 \U0001F600 \\"quoted\\" \\\\ \\/" ,'
    ' "nested" : { "a" : [ 1 , { "b" : null } , [ ] , { } ] , "t" : true } }  ',
    '{"images":["/data/a b.jpg","C:\\\\x\\\\y.png"],"zero":-0.0,"n":0}',
]


def summary(stderr):
    """(acked, first_id, last_id, already_stored, rejected) from the one summary line."""
    found = SUMMARY.findall(stderr)
    if len(found) != 1:
        raise AssertionError(f"expected one summary line on stderr, got: {stderr!r}")
    acked, first, last, dup, rejected = found[0]
    last = last or first  # "(id 7)" for one event
    return (int(acked), int(first) if first else None, int(last) if last else None,
            int(dup or 0), int(rejected))


def reported_lines(stderr):
    """Line numbers publish reported as bad, in order."""
    return [int(n) for n in re.findall(r"^evstream publish: line (\d+): ", stderr, re.M)]


class PublishTest(ClientTestCase):

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.server = self.start_server()

    def publish(self, *args, input=None, timeout=30.0):
        return self.cli("publish", "--url", self.server.url, *args, input=input, timeout=timeout)

    def assertSameData(self, record, line):
        self.assertEqual(raw_member(record.raw, "data"), strip_ws(line.strip()))

    async def test_count_words_agree_with_their_number(self):
        code, _, err = self.publish('{"one":1}')
        self.assertEqual(code, 0, err)
        self.assertIn("published 1 event (id 1), 0 rejected", err)
        self.assertEqual(summary(err), (1, 1, 1, 0, 0))
        code, _, err = self.publish('{"two":1}', '{"two":2}')
        self.assertIn("published 2 events (ids 2-3), 0 rejected", err)

    async def test_stdin_ids_and_data_byte_for_byte(self):
        text = "\n".join(TRICKY_LINES[:2]) + "\r\n" + TRICKY_LINES[2]  # CRLF, no final newline
        code, out, err = self.publish(input=text)
        self.assertEqual(code, 0, err)
        self.assertEqual(out, "", "publish writes nothing on stdout")
        self.assertEqual(summary(err), (3, 1, 3, 0, 0))
        self.assertIn("published 3 events (ids 1-3), 0 rejected", err)
        records = await self.stored(self.server)
        self.assertEqual([r["id"] for r in records], [1, 2, 3])
        for record, line in zip(records, TRICKY_LINES):
            self.assertEqual(record["topic"], "events")
            self.assertSameData(record, line)

    async def test_positional_arguments(self):
        code, out, err = self.publish(*TRICKY_LINES)
        self.assertEqual(code, 0, err)
        self.assertEqual(out, "")
        self.assertEqual(summary(err), (3, 1, 3, 0, 0))
        records = await self.stored(self.server)
        self.assertEqual([r["id"] for r in records], [1, 2, 3])
        for record, line in zip(records, TRICKY_LINES):
            self.assertSameData(record, line)
        # With arguments, stdin is not read (it is left open here and publish must not wait).
        child = self.spawn("publish", "--url", self.server.url, '{"arg":1}',
                           stdin=subprocess.PIPE)
        self.assertEqual(await child.wait_exit(), 0, child.stderr_text())
        self.assertEqual(summary(child.stderr_text()), (1, 4, 4, 0, 0))

    async def test_topic(self):
        lines = ['{"n":1}',
                 '{"type":"event","topic":"other","data":{"n":2}}',  # an envelope names its own
                 '{"n":3}']
        code, _, err = self.publish("--topic", "cams.front-1", input="\n".join(lines) + "\n")
        self.assertEqual(code, 0, err)
        records = await self.stored(self.server)
        self.assertEqual([(r["topic"], r["data"]) for r in records],
                         [("cams.front-1", {"n": 1}), ("other", {"n": 2}),
                          ("cams.front-1", {"n": 3})])
        # A bad --topic: every line is rejected (nothing stored), exit 1.
        code, _, err = self.publish("--topic", "bad topic", '{"n":4}')
        self.assertEqual(code, 1, err)
        self.assertEqual(summary(err)[4], 1)
        self.assertEqual(len(await self.stored(self.server)), 3)

    async def test_key_field(self):
        lines = ['{"eid":"a","v":1}',
                 '{"eid":"b","v":2}',
                 '{"eid":"a","v":3}',  # same key as line 1: acked with line 1's id, not stored
                 '{"v":4}',            # no key field: rejected
                 '{"eid":7,"v":5}']    # a number is a key too
        text = "\n".join(lines) + "\n"
        code, out, err = self.publish("--key-field", "eid", input=text)
        self.assertEqual(code, 1, err)
        self.assertEqual(reported_lines(err), [4])
        self.assertRegex(err, r"line 4: .*eid")
        self.assertEqual(summary(err), (4, 1, 3, 1, 1))
        records = await self.stored(self.server)
        self.assertEqual([(r["id"], r["data"]["v"]) for r in records], [(1, 1), (2, 2), (3, 5)])
        # The keys come from the data, so a second run stores nothing new.
        code, out, err = self.publish("--key-field", "eid", input=text)
        self.assertEqual(code, 1, err)
        self.assertEqual(summary(err), (4, 1, 3, 4, 1))
        self.assertEqual(len(await self.stored(self.server)), 3)

    async def test_without_key_field_runs_are_independent(self):
        # The automatic keys are per run: the same input published twice is stored twice.
        for _ in range(2):
            code, _, err = self.publish(input='{"same":1}\n{"same":1}\n')
            self.assertEqual(code, 0, err)
        self.assertEqual(len(await self.stored(self.server)), 4)

    async def test_bad_lines_reported_with_numbers(self):
        lines = ['{"ok":1}',
                 'not json',
                 '[1,2]',
                 '"a string"',
                 '{"ok":2}',
                 '{"a":1,}',
                 '{"type":"event","topic":"bad topic","data":{}}',
                 '',  # blank lines are skipped, but still counted
                 '{"ok":3}',
                 '{"ok":']
        code, out, err = self.publish(input="\n".join(lines) + "\n")
        self.assertEqual(code, 1, err)
        self.assertEqual(out, "")
        self.assertEqual(reported_lines(err), [2, 3, 4, 6, 7, 10])
        for number in (2, 6, 10):
            self.assertRegex(err, rf"line {number}: .*JSON")
        for number in (3, 4):
            self.assertRegex(err, rf"line {number}: .*object")
        self.assertRegex(err, r"line 7: .*topic")
        self.assertEqual(summary(err), (3, 1, 3, 0, 6))
        records = await self.stored(self.server)
        self.assertEqual([r["data"] for r in records], [{"ok": 1}, {"ok": 2}, {"ok": 3}])

    async def test_too_large_line_rejected(self):
        small = self.start_server("--max-message-bytes", "4096")
        lines = ['{"n":1}', json.dumps({"big": "x" * 10000}), '{"n":3}']
        code, _, err = self.cli("publish", "--url", small.url, input="\n".join(lines) + "\n",
                                timeout=20)
        self.assertEqual(code, 1, err)
        self.assertEqual(reported_lines(err), [2])
        self.assertRegex(err, r"line 2: .*too large")
        self.assertEqual(summary(err)[0], 2)
        self.assertEqual(summary(err)[4], 1)
        self.assertEqual([r["data"] for r in await self.stored(small)], [{"n": 1}, {"n": 3}])

    async def test_usage_errors_exit_2(self):
        for args in (["--no-such-flag"], ["--window", "0"], ["--retry-timeout", "soon"],
                     ["--url", "ftp://127.0.0.1:1"]):
            code, out, err = self.publish(*args, '{"a":1}')
            self.assertEqual(code, 2, (args, err))
            self.assertEqual(out, "")
            self.assertTrue(err.startswith("evstream: error: "), err)
            self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertEqual(await self.stored(self.server), [])

    async def test_unreachable_exit_69(self):
        url = f"ws://127.0.0.1:{free_port()}"
        for args, stdin in ((['{"a":1}'], None), ([], '{"a":1}\n')):
            started = time.monotonic()
            code, out, err = self.cli("publish", "--url", url, "--retry-timeout", "1s", *args,
                                      input=stdin, timeout=20)
            elapsed = time.monotonic() - started
            self.assertEqual(code, 69, err)
            self.assertEqual(out, "")
            self.assertIn(url, err)
            self.assertRegex(err, r"evstream: error: cannot reach .*retry-timeout")
            self.assertLess(elapsed, 5.0, "gives up soon after --retry-timeout")

    async def test_wrong_token_fails_at_once_without_leaking_it(self):
        server = self.start_server("--token", "right-token")
        started = time.monotonic()
        code, out, err = self.cli("publish", "--url", server.url, "--token", "wrong-token",
                                  '{"a":1}', timeout=20)
        self.assertEqual(code, 69, err)
        self.assertLess(time.monotonic() - started, 5.0, "a refused token is not retried")
        self.assertIn("refused the token (HTTP 401)", err)
        self.assertNotIn("wrong-token", err)
        self.assertNotIn("retrying", err)
        code, _, err = self.cli("publish", "--url", server.url, "--token", "right-token",
                                '{"a":1}', timeout=20)
        self.assertEqual(code, 0, err)

    async def test_streaming_slow_trickle(self):
        sub = await self.subscribe(self.server)
        child = self.spawn("publish", "--url", self.server.url, stdin=subprocess.PIPE)
        for i in range(3):
            # One line, stdin still open: it must be sent (and stored) without more input.
            child.write(json.dumps({"i": i}) + "\n")
            [event] = await sub.events(1)
            self.assertEqual((event["id"], event["data"]), (i + 1, {"i": i}))
            self.assertTrue(child.running(), "publish exited with its stdin still open")
        child.close_stdin()
        self.assertEqual(await child.wait_exit(), 0, child.stderr_text())
        self.assertEqual(summary(child.stderr_text()), (3, 1, 3, 0, 0))

    async def test_server_kill_9_and_restart_mid_publish(self):
        total = 5000
        lines = [json.dumps({"seq": i, "camera_id": "cam-1"}) for i in range(total)]
        port = self.server.port
        live = await self.subscribe(self.server)
        child = self.spawn("publish", "--url", self.server.url, "--retry-timeout", "30s",
                           stdin=subprocess.PIPE)
        child.write("\n".join(lines[:total // 2]) + "\n")
        await live.events(1, timeout=10)  # publishing is under way: kill -9 the server now
        self.server.kill()
        with sqlite3.connect(self.server.db) as db:
            at_kill = db.execute("SELECT count(*) FROM events").fetchone()[0]
        self.assertLess(at_kill, total)
        child.write("\n".join(lines[total // 2:]) + "\n")  # more input while the server is down
        await child.wait_stderr(r"retrying in", timeout=10)
        restarted = self.start_server_on(port, db=self.server.db, name="restarted")
        child.close_stdin()
        self.assertEqual(await child.wait_exit(timeout=40), 0, child.stderr_text())
        acked, first, last, _, rejected = summary(child.stderr_text())
        self.assertEqual((acked, rejected), (total, 0))
        records = await self.stored(restarted, timeout=20)
        seqs = [r["data"]["seq"] for r in records]
        self.assertEqual(len(records), total, f"{at_kill} were stored at the kill")
        self.assertEqual(sorted(seqs), list(range(total)), "each line stored exactly once")
        self.assertEqual(seqs, list(range(total)), "stored in input order")
        ids = [r["id"] for r in records]
        self.assertEqual(len(set(ids)), total)
        print(f"\n  restart test: {at_kill} of {total} stored at the kill -9", file=sys.stderr)

    async def test_throughput_100k_lines(self):
        # Sanitizer builds (make check) run several times slower: same test, fewer lines.
        total = 20_000 if os.environ.get("EVSTREAM_SANITIZED") else 100_000
        path = os.path.join(self.tmpdir, "lines.ndjson")
        with open(path, "w") as f:
            for i in range(total):
                f.write(f'{{"seq":{i},"camera_id":"cam-{i % 8}","score":0.{i % 97:02d}}}\n')
        started = time.monotonic()
        with open(path, "rb") as f:
            result = subprocess.run([evstream_bin(), "publish", "--url", self.server.url],
                                    stdin=f, capture_output=True, timeout=60, env=client_env())
        elapsed = time.monotonic() - started
        err = result.stderr.decode()
        self.assertEqual(result.returncode, 0, err)
        self.assertEqual(summary(err), (total, 1, total, 0, 0))
        rate = total / elapsed
        print(f"\n  publish throughput: {total} lines in {elapsed:.2f}s = {rate:,.0f} lines/s",
              file=sys.stderr)
        self.assertGreater(rate, 500 if os.environ.get("EVSTREAM_SANITIZED") else 2000,
                           "pipelined publish should not be bound by round trips")
        sub = await self.subscribe(self.server)
        self.assertEqual(sub.last_id, total)


if __name__ == "__main__":
    unittest.main()
