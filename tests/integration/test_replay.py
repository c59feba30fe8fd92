"""evstream replay against real servers: the same lines from --db (read-only, while the server
runs) and from --url (paged REST), since/until/topic edges, --data-only piped into publish, --to
into a second server (data byte for byte), pacing by the original times, a closed stdout, and the
error exits (usage 2, unreadable source 1, unreachable 69)."""
import asyncio
import calendar
import json
import os
import subprocess
import time
import unittest

from evtest import ClientTestCase, client_env, evstream_bin, raw_member, strip_ws

# Data that must come back byte for byte: digits beyond double precision, escapes, unicode.
TRICKY = [
    '{"camera_id":"cam-1","confidence":0.98765432101234567890,"big":123456789012345678901234567890}',
    '{"description":"caf\\u00e9 \u2603 \\"q\\" \\\\ \\/","nested":{"a":[1,{"b":null},[],{}],"t":true}}',
    '{"images":["/data/a b.jpg"],"zero":-0.0,"e":1E+400}',
]


def records(text):
    """The NDJSON lines of `text` as (raw line, decoded record) pairs."""
    return [(line, json.loads(line)) for line in text.splitlines()]


class ReplayTest(ClientTestCase):

    async def publish_frames(self, server, frames):
        """Publishes raw frames (pipelined); their ack ids."""
        pub = await self.publisher(server)
        replies = await pub.pipeline(frames, timeout=60)
        for reply in replies:
            self.assertEqual(reply.type, "ack", reply)
        await pub.close()
        return [reply["id"] for reply in replies]

    async def fill(self, server, count):
        """`count` events: topic a for odd ids, b for even ones, then the TRICKY data on c."""
        frames = [json.dumps({"type": "event", "topic": "a" if i % 2 else "b", "data": {"i": i}})
                  for i in range(1, count + 1)]
        frames += ['{"type":"event","topic":"c","data":' + data + "}" for data in TRICKY]
        return await self.publish_frames(server, frames)

    def replay(self, *args, input=None, timeout=60.0, env_token=None):
        env = {"EVSTREAM_TOKEN": env_token} if env_token else None
        return self.cli("replay", *args, input=input, timeout=timeout, env=env)

    def both(self, server, *args):
        """stdout of the same replay from --db and from --url, checked equal, as records."""
        code_db, out_db, err_db = self.replay("--db", server.db, *args)
        code_url, out_url, err_url = self.replay("--url", server.url, *args)
        self.assertEqual((code_db, err_db), (0, ""), f"--db {args}")
        self.assertEqual((code_url, err_url), (0, ""), f"--url {args}")
        self.assertEqual(out_db, out_url, f"--db and --url differ for {args}")
        return records(out_db)

    def ids(self, server, *args):
        return [record["id"] for _, record in self.both(server, *args)]

    async def test_db_and_url_give_identical_lines(self):
        server = self.start_server()
        ids = await self.fill(server, 2500)  # three REST pages and three store pages
        lines = self.both(server)
        self.assertEqual([r["id"] for _, r in lines], ids)
        self.assertEqual([r["topic"] for _, r in lines[:4]], ["a", "b", "a", "b"])
        for (line, record), data in zip(lines[-3:], TRICKY):
            self.assertEqual(record["topic"], "c")
            self.assertEqual(raw_member(line, "data"), strip_ws(data))
            self.assertRegex(record["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
        # The same as the REST API's own records, key order and all.
        self.assertEqual(list(lines[0][1]), ["id", "topic", "time", "data"])

    async def test_since_until_topic_edges(self):
        server = self.start_server()
        await self.fill(server, 10)
        every = list(range(1, 14))
        self.assertEqual(self.ids(server), every)
        self.assertEqual(self.ids(server, "--since", "0"), every)
        self.assertEqual(self.ids(server, "--since", "3"), every[3:])  # after 3
        self.assertEqual(self.ids(server, "--until", "5"), [1, 2, 3, 4, 5])  # up to 5
        self.assertEqual(self.ids(server, "--since", "3", "--until", "5"), [4, 5])
        self.assertEqual(self.ids(server, "--since", "5", "--until", "5"), [])
        self.assertEqual(self.ids(server, "--since", "13"), [])
        self.assertEqual(self.ids(server, "--until", "0"), [])
        self.assertEqual(self.ids(server, "--until", "999"), every)
        self.assertEqual(self.ids(server, "--topic", "b"), [2, 4, 6, 8, 10])
        self.assertEqual(self.ids(server, "--topic", "a", "--topic", "c", "--since", "8"),
                         [9, 11, 12, 13])
        self.assertEqual(self.ids(server, "--topic", "nope"), [])
        # Times are inclusive at both ends. Events committed in one batch share one time, so a
        # time bound takes every event of that time: the expectation comes from the stored times
        # (fixed-width RFC 3339 UTC compares as text), and always holds 4..7 itself.
        records = [record for _, record in self.both(server)]
        t4, t7 = records[3]["time"], records[6]["time"]

        def timed(low, high):
            return [r["id"] for r in records if low <= r["time"] <= high]

        between = self.ids(server, "--since", t4, "--until", t7)
        self.assertEqual(between, timed(t4, t7))
        self.assertTrue(set(range(4, 8)) <= set(between), between)
        self.assertEqual(self.ids(server, "--since", t4.replace("Z", "+00:00")), timed(t4, "~"))
        self.assertEqual(self.ids(server, "--since", "1h"), every)
        self.assertEqual(self.ids(server, "--until", "1h"), [])
        self.assertEqual(self.ids(server, "--since", "1h", "--until", t4), timed("", t4))

    async def test_data_only_piped_into_publish(self):
        source = self.start_server()
        await self.fill(source, 50)
        target = self.start_server(db=os.path.join(self.tmpdir, "target.db"))
        env = client_env()
        replay = subprocess.Popen([evstream_bin(), "replay", "--db", source.db, "--topic", "c",
                                   "--data-only"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=env)
        publish = subprocess.run([evstream_bin(), "publish", "--url", target.url],
                                 stdin=replay.stdout, capture_output=True, timeout=30, env=env)
        replay.stdout.close()
        self.assertEqual(replay.wait(timeout=30), 0, replay.stderr.read())
        replay.stderr.close()
        self.assertEqual(publish.returncode, 0, publish.stderr)
        self.assertIn(b"published 3 events (ids 1-3), 0 rejected", publish.stderr)
        stored = await self.stored(target)
        self.assertEqual([raw_member(r.raw, "data") for r in stored],
                         [strip_ws(data) for data in TRICKY])

    async def test_to_second_server(self):
        source = self.start_server()
        await self.fill(source, 1200)
        target = self.start_server(db=os.path.join(self.tmpdir, "target.db"))
        code, out, err = self.replay("--url", source.url, "--to", target.url)
        self.assertEqual(code, 0, err)
        self.assertEqual(out, "")
        self.assertIn("evstream replay: published 1203 events (ids 1-1203), 0 rejected", err)
        want = await self.stored(source)
        got = await self.stored(target)
        self.assertEqual(len(got), len(want))
        self.assertEqual([r["topic"] for r in got], [r["topic"] for r in want])
        self.assertEqual([raw_member(r.raw, "data") for r in got],
                         [raw_member(r.raw, "data") for r in want])
        # From the file as well, and --data-only cannot be combined with --to.
        code, _, err = self.replay("--db", source.db, "--since", "1200", "--to", target.url)
        self.assertEqual(code, 0, err)
        self.assertIn("published 3 events (ids 1204-1206)", err)
        code, _, err = self.replay("--db", source.db, "--data-only", "--to", target.url)
        self.assertEqual(code, 2, err)

    async def test_pacing(self):
        server = self.start_server()
        pub = await self.publisher(server)
        for i in range(5):
            if i:
                await asyncio.sleep(0.2)
            self.assertEqual((await pub.publish({"type": "event", "data": {"i": i}})).type, "ack")
        await pub.close()
        lines = self.both(server)
        span = (self.unix(lines[-1][1]["time"]) - self.unix(lines[0][1]["time"]))
        self.assertGreater(span, 0.75)

        def timed(*args):
            start = time.monotonic()
            code, out, err = self.replay(*args)
            self.assertEqual((code, err), (0, ""))
            self.assertEqual(len(out.splitlines()), 5)
            return time.monotonic() - start

        # Wall-clock bounds only: a paced replay cannot finish sooner than the span / speed, and
        # must not take much longer. The exact schedule is unit-tested with a fake clock
        # (replay::Pacer); here a loaded machine (sanitizers, both cores busy) may only add time,
        # so the lower bounds are tight and the upper ones loose.
        slack = 1.5
        for source in (("--db", server.db), ("--url", server.url)):
            with self.subTest(source=source[0]):
                fast = min(timed(*source, "--speed", "0"), timed(*source))
                paced = timed(*source, "--speed", "2")
                self.assertGreaterEqual(paced, span / 2)
                self.assertLess(paced - fast, span / 2 + slack)
        # Pacing also holds when republishing: the target's times are spaced like the source's.
        target = self.start_server(db=os.path.join(self.tmpdir, "target.db"))
        code, _, err = self.replay("--db", server.db, "--speed", "2", "--to", target.url)
        self.assertEqual(code, 0, err)
        got = await self.stored(target)
        spaced = self.unix(got[-1]["time"]) - self.unix(got[0]["time"])
        # Acceptance times trail the paced sends by a round trip each, and the first one's may be
        # the longest (a fresh connection), so the lower bound allows for it; unpaced would be ~0.
        self.assertGreaterEqual(spaced, span / 2 - 0.15)
        self.assertLess(spaced, span / 2 + slack)

    @staticmethod
    def unix(rfc3339):
        seconds, fraction = rfc3339.rstrip("Z").split(".")
        return calendar.timegm(time.strptime(seconds, "%Y-%m-%dT%H:%M:%S")) + float("0." + fraction)

    async def test_closed_stdout_exits_0_quietly(self):
        server = self.start_server()
        await self.fill(server, 3000)
        for source in (("--db", server.db), ("--url", server.url)):
            with self.subTest(source=source[0]):
                # A reader that reads one line and goes away (`| head -1`).
                err_path = os.path.join(self.tmpdir, "replay.stderr")
                with open(err_path, "wb") as err:
                    child = subprocess.Popen([evstream_bin(), "replay", *source],
                                             stdout=subprocess.PIPE, stderr=err, env=client_env())
                    first = child.stdout.readline()
                    child.stdout.close()
                    self.assertEqual(child.wait(timeout=30), 0)
                self.assertEqual(json.loads(first)["id"], 1)
                with open(err_path, "rb") as err:
                    self.assertEqual(err.read(), b"")
                # A pipe already closed before the first write.
                read_end, write_end = os.pipe()
                os.close(read_end)
                result = subprocess.run([evstream_bin(), "replay", *source], stdout=write_end,
                                        stderr=subprocess.PIPE, timeout=30, env=client_env())
                os.close(write_end)
                self.assertEqual((result.returncode, result.stderr), (0, b""))

    async def test_errors(self):
        server = self.start_server("--read-token", "r3ad")
        await self.fill(server, 3)
        usage = [
            [],
            ["--db", server.db, "--url", server.url],
            ["--db", server.db, "--speed", "-1"],
            ["--db", server.db, "--speed", "nan"],
            ["--db", server.db, "--since", "yesterday"],
            ["--db", server.db, "--until", "1.5"],
            ["--db", server.db, "--topic", "bad topic"],
            ["--db", server.db, "--to", "ftp://x"],
            ["--db", server.db, "--to", server.url, "--retry-timeout", "soon"],
        ]
        for args in usage:
            with self.subTest(args=args):
                code, out, err = self.replay(*args)
                self.assertEqual(code, 2, err)
                self.assertEqual(out, "")
                self.assertRegex(err, r"^evstream: error: .+\n$")
        code, _, err = self.replay("--db", os.path.join(self.tmpdir, "missing.db"))
        self.assertEqual(code, 1)
        self.assertIn("missing.db", err)
        # The read token: refused without it, accepted as --read-token or via --token.
        code, out, err = self.replay("--url", server.url)
        self.assertEqual((code, out), (1, ""))
        self.assertIn("401", err)
        self.assertIn("--read-token", err)
        self.assertEqual(len(self.replay("--url", server.url, "--read-token", "r3ad")[1]
                             .splitlines()), 6)
        code, out, err = self.replay("--url", server.url, env_token="r3ad")
        self.assertEqual((code, len(out.splitlines())), (0, 6), err)
        # Unreachable source or target: 69.
        await server.stop()
        code, out, err = self.replay("--url", server.url)
        self.assertEqual((code, out), (69, ""))
        self.assertIn("cannot reach", err)
        code, _, err = self.replay("--db", server.db, "--to", server.url, "--retry-timeout", "1s")
        self.assertEqual(code, 69, err)
        self.assertIn("cannot reach", err)


if __name__ == "__main__":
    unittest.main()
