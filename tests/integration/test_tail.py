"""evstream tail against a real server: NDJSON records in a pipe, --count, -n, --since (id,
duration, RFC 3339 time), --topic, --format, --json, --exec, resuming across a kill -9 restart of
the server without gap or duplicate, a closed stdout, Ctrl-C, the terminal format through a
pseudo-terminal (lines cut to its width unless --wide), and a server that is down when tail
starts."""
import datetime
import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time
import unicodedata
import unittest

from evtest import (EXIT_TIMEOUT, RECV_TIMEOUT, ClientTestCase, async_wait_for, client_env,
                    evstream_bin, free_port, raw_member, strip_ws, wait_for)

RFC3339_US = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def columns_of(text):
    """The terminal columns `text` takes: colours none, East Asian wide characters 2."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF"
               else 1 for c in ANSI.sub("", text))


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def format_time(moment, offset_hours=0):
    zone = datetime.timezone(datetime.timedelta(hours=offset_hours))
    text = moment.astimezone(zone).isoformat(timespec="microseconds")
    return text.replace("+00:00", "Z")


class TailTest(ClientTestCase):

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.server = self.start_server()

    # -- helpers ---------------------------------------------------------------------------

    async def publish_raw(self, frames, server=None):
        """Publishes raw frames (bare data objects or envelopes); their ack ids."""
        pub = await self.publisher(server or self.server)
        replies = await pub.pipeline(frames)
        await pub.close()
        for reply in replies:
            self.assertEqual(reply.type, "ack", reply)
        return [reply["id"] for reply in replies]

    async def publish_n(self, count, start=0, topic=None):
        frames = []
        for i in range(start, start + count):
            frame = {"type": "event", "data": {"n": i}}
            if topic:
                frame["topic"] = topic
            frames.append(json.dumps(frame))
        return await self.publish_raw(frames)

    def subscriptions(self, server=None):
        """How many /ws/events connections the server has logged so far."""
        return len((server or self.server).find_log("connect", path="/ws/events"))

    async def wait_subscribed(self, before, server=None):
        """Waits for the server to log one more /ws/events connection than `before`."""
        await async_wait_for(lambda: self.subscriptions(server) > before, RECV_TIMEOUT,
                             what="a new /ws/events connection in the server log")

    def tail(self, *args, **kwargs):
        return self.cli("tail", "--url", self.server.url, *args, **kwargs)

    def spawn_tail(self, *args, server=None, **kwargs):
        return self.spawn("tail", "--url", (server or self.server).url, *args, **kwargs)

    def assertRecordLines(self, lines):
        """Every line is one NDJSON record {"id","topic","time","data"}; returns them decoded."""
        records = []
        for line in lines:
            self.assertNotIn("\x1b", line)
            record = json.loads(line)
            self.assertEqual(list(record), ["id", "topic", "time", "data"], line)
            self.assertIsInstance(record["id"], int)
            self.assertRegex(record["time"], RFC3339_US)
            self.assertIsInstance(record["data"], dict)
            records.append(record)
        return records

    def run_in_pty(self, *args, env=None, timeout=10.0, columns=200):
        """Runs `evstream tail ARGS` with its stdout on a pseudo-terminal `columns` wide (0: a
        terminal that does not know its size) until it exits; what it wrote there (CRLF turned
        back into LF) and its stderr."""
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
        stderr_path = os.path.join(self.tmpdir, "tail-pty.stderr")
        with open(stderr_path, "wb") as stderr:
            proc = subprocess.Popen([evstream_bin(), "tail", "--url", self.server.url, *args],
                                    stdin=subprocess.DEVNULL, stdout=slave, stderr=stderr,
                                    env=client_env(env), cwd=self.tmpdir)
        os.close(slave)
        output = b""
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"tail on a pty did not finish within {timeout}s; "
                                         f"output so far {output!r}")
                ready, _, _ = select.select([master], [], [], min(left, 0.1))
                if not ready:
                    continue
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the slave side is closed, tail has exited
                    break
                if not chunk:
                    break
                output += chunk
            proc.wait(timeout=EXIT_TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=EXIT_TIMEOUT)
            os.close(master)
        with open(stderr_path, "rb") as f:
            err = f.read().decode()
        self.assertEqual(proc.returncode, 0, err)
        return output.decode().replace("\r\n", "\n"), err

    # -- output formats --------------------------------------------------------------------

    async def test_piped_output_is_ndjson_records(self):
        frames = ['{"camera_id":"cam-1","confidence":0.98765432109876543210,"big":1234567890123456789012}',
                  '{"description":"caf\\u00e9 \u2603 \\ud83d\\ude00","nested":{"a":[1,{"b":null}]}}',
                  '{"type":"event","topic":"detections","data":{"n":3}}']
        await self.publish_raw(frames)
        code, out, err = self.tail("--since", "0", "--count", "3")
        self.assertEqual(code, 0, err)
        self.assertTrue(out.endswith("\n"))
        records = self.assertRecordLines(out.splitlines())
        self.assertEqual([(r["id"], r["topic"]) for r in records],
                         [(1, "events"), (2, "events"), (3, "detections")])
        # data exactly as the server stores and sends it (digits and escapes kept)
        stored = await self.stored(self.server)
        for line, record in zip(out.splitlines(), stored):
            self.assertEqual(raw_member(line, "data"), raw_member(record.raw, "data"))
        self.assertEqual(raw_member(out.splitlines()[0], "data"), strip_ws(frames[0]))
        self.assertEqual(raw_member(out.splitlines()[1], "data"), strip_ws(frames[1]))

    async def test_format_template(self):
        await self.publish_raw([json.dumps({"a": {"b": "x y"}, "list": [10, {"k": True}], "n": 7,
                                            "camera_id": "cam-9"}),
                                json.dumps({"type": "event", "topic": "t2", "data": {"n": 8}})])
        template = "{id}|{topic}|{data.a.b}|{data.list.1.k}|{data.list.0}|{data.missing}|{data.n}"
        code, out, err = self.tail("--since", "0", "--count", "2", "--format", template)
        self.assertEqual(code, 0, err)
        self.assertEqual(out.splitlines(), ["1|events|x y|true|10||7", "2|t2|||||8"])
        code, out, err = self.tail("--since", "1", "--count", "1", "--format", "{time} {data}")
        self.assertEqual(code, 0, err)
        time_text, data = out.rstrip("\n").split(" ", 1)
        self.assertRegex(time_text, RFC3339_US)
        self.assertEqual(json.loads(data), {"n": 8})

    async def test_terminal_format_through_a_pty(self):
        await self.publish_raw(['{"camera_id":"cam-1","n":1}',
                                '{"type":"event","topic":"detections","data":{"n":2}}'])
        out, err = self.run_in_pty("--since", "0", "--count", "2")
        self.assertIn("\x1b[", out, "colours on a terminal")
        lines = ANSI.sub("", out).splitlines()
        self.assertEqual(len(lines), 2, out)
        pattern = re.compile(r"^(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?)\s+#(\d+)\s+(\S+)\s+(\{.*\})$")
        parsed = [pattern.match(line) for line in lines]
        self.assertTrue(all(parsed), lines)
        self.assertEqual([(m[2], m[3], json.loads(m[4])) for m in parsed],
                         [("1", "events", {"camera_id": "cam-1", "n": 1}),
                          ("2", "detections", {"n": 2})])
        for line in lines:
            self.assertFalse(line.startswith("{"), "a readable line, not NDJSON, on a terminal")

        for env, args in (({"NO_COLOR": "1"}, ()), (None, ("--no-color",))):
            out, _ = self.run_in_pty("--since", "0", "--count", "2", *args, env=env)
            self.assertNotIn("\x1b", out, (env, args))
            self.assertEqual([pattern.match(line)[2] for line in out.splitlines()], ["1", "2"])

        out, _ = self.run_in_pty("--since", "0", "--count", "2", "--json")
        self.assertEqual([r["id"] for r in self.assertRecordLines(out.splitlines())], [1, 2])

    async def test_terminal_lines_fit_its_width(self):
        description = "d\u00e9tection \u65e5\u672c " + "x" * 300
        data = {"camera_id": "cam-1", "description": description}
        await self.publish_raw([json.dumps(data, ensure_ascii=False)])
        # One line per event, cut to the terminal's width with an ellipsis; colours closed.
        out, _ = self.run_in_pty("--since", "0", "--count", "1", columns=60)
        self.assertEqual(out.count("\n"), 1, out)
        line = out.rstrip("\n")
        self.assertTrue(line.endswith("\u2026\x1b[0m"), repr(line))
        self.assertEqual(columns_of(line), 60, repr(line))
        self.assertRegex(ANSI.sub("", line), r'^\S+ \S+  #1  events  \{"camera_id":"cam-1",')
        # Templates are cut the same way, never inside a character (the wide ones included).
        for width, expected in ((30, "1 d\u00e9tection \u65e5\u672c " + "x" * 12 + "\u2026"),
                                (15, "1 d\u00e9tection \u65e5\u2026"),
                                (14, "1 d\u00e9tection \u2026")):
            out, _ = self.run_in_pty("--since", "0", "--count", "1", "--format",
                                     "{id} {data.description}", columns=width)
            self.assertEqual(out, expected + "\n", width)
            self.assertLessEqual(columns_of(expected), width)
        # --wide keeps everything on a terminal; so does a pipe.
        out, _ = self.run_in_pty("--since", "0", "--count", "1", "--wide", "--no-color",
                                 columns=60)
        self.assertEqual(json.loads(out.rstrip("\n").split("  ", 3)[3]), data)
        code, out, err = self.tail("--since", "0", "--count", "1")
        self.assertEqual(code, 0, err)
        self.assertEqual(self.assertRecordLines(out.splitlines())[0]["data"], data)
        # --json is never cut: a record must stay JSON.
        out, _ = self.run_in_pty("--since", "0", "--count", "1", "--json", columns=60)
        self.assertEqual(self.assertRecordLines(out.splitlines())[0]["data"], data)
        # A terminal that does not know its width: $COLUMNS, else 80.
        out, _ = self.run_in_pty("--since", "0", "--count", "1", "--no-color", columns=0,
                                 env={"COLUMNS": "40"})
        self.assertEqual(columns_of(out.rstrip("\n")), 40, out)
        out, _ = self.run_in_pty("--since", "0", "--count", "1", "--no-color", columns=0,
                                 env={"COLUMNS": ""})
        self.assertEqual(columns_of(out.rstrip("\n")), 80, out)

    # -- where to start, what to follow ----------------------------------------------------

    async def test_count_exits_after_n(self):
        await self.publish_n(5)
        code, out, err = self.tail("--since", "0", "--count", "2")
        self.assertEqual(code, 0, err)
        self.assertEqual([r["id"] for r in self.assertRecordLines(out.splitlines())], [1, 2])
        # Live: one stored event shows tail is subscribed, then it stops at the count.
        child = self.spawn_tail("-n", "1", "--count", "3")
        self.assertEqual(json.loads((await child.wait_lines(1))[0])["id"], 5)
        await self.publish_n(4, start=5)
        self.assertEqual(await child.wait_exit(), 0, child.stderr_text())
        self.assertEqual([json.loads(line)["id"] for line in child.lines], [5, 6, 7])

    async def test_last_n_then_live(self):
        await self.publish_n(5)
        child = self.spawn_tail("-n", "2")
        first = await child.wait_lines(2)
        self.assertEqual([json.loads(line)["id"] for line in first], [4, 5])
        await self.publish_n(2, start=5)
        lines = await child.wait_lines(4)
        self.assertEqual([json.loads(line)["id"] for line in lines], [4, 5, 6, 7])
        child.send_signal(signal.SIGINT)
        self.assertEqual(await child.wait_exit(), 0, child.stderr_text())
        self.assertEqual(len(child.lines), 4)

    async def test_since_id(self):
        await self.publish_n(5)
        child = self.spawn_tail("--since", "3", "--count", "3")
        self.assertEqual([json.loads(line)["id"] for line in await child.wait_lines(2)], [4, 5])
        await self.publish_n(1, start=5)
        self.assertEqual(await child.wait_exit(), 0, child.stderr_text())
        records = self.assertRecordLines(child.lines)
        self.assertEqual([(r["id"], r["data"]["n"]) for r in records], [(4, 3), (5, 4), (6, 5)])

    async def test_since_duration_and_time(self):
        await self.publish_n(3)
        await self.publish_n(2, start=3)
        stored = await self.stored(self.server)
        times = [parse_time(r["time"]) for r in stored]
        self.assertGreater(times[3], times[2], "the second batch is later")
        # A duration ago: all five are from the last 10 minutes.
        code, out, err = self.tail("--since", "10m", "--count", "5")
        self.assertEqual(code, 0, err)
        self.assertEqual([r["id"] for r in self.assertRecordLines(out.splitlines())],
                         [1, 2, 3, 4, 5])
        # An RFC 3339 time between the batches, in UTC and with an offset: the second batch.
        between = times[2] + (times[3] - times[2]) / 2
        if between in (times[2], times[3]):  # the batches are 1us apart: use the later one
            between = times[3]
        for text in (format_time(between), format_time(between, 2)):
            code, out, err = self.tail("--since", text, "--count", "2")
            self.assertEqual(code, 0, (text, err))
            self.assertEqual([r["id"] for r in self.assertRecordLines(out.splitlines())], [4, 5],
                             text)
        # A time in the future: nothing stored matches, then live events.
        subscribed = self.subscriptions()
        child = self.spawn_tail("--since", format_time(times[4] + datetime.timedelta(hours=1)),
                                "--count", "1")
        await self.wait_subscribed(subscribed)
        await self.publish_n(1, start=5)
        self.assertEqual(await child.wait_exit(), 0, child.stderr_text())
        self.assertEqual([json.loads(line)["id"] for line in child.lines], [6])

    async def test_topic_filter_repeatable(self):
        frames = [json.dumps({"type": "event", "topic": topic, "data": {"i": i}})
                  for i, topic in enumerate(["a", "b", "c", "a", "c", "b", "a.b"])]
        await self.publish_raw(frames)
        code, out, err = self.tail("--since", "0", "--topic", "a", "--topic", "c", "--count", "4")
        self.assertEqual(code, 0, err)
        records = self.assertRecordLines(out.splitlines())
        self.assertEqual([(r["id"], r["topic"]) for r in records],
                         [(1, "a"), (3, "c"), (4, "a"), (5, "c")])
        # Live events of other topics do not count towards --count.
        child = self.spawn_tail("--topic", "b", "-n", "1", "--count", "2")
        self.assertEqual(json.loads((await child.wait_lines(1))[0])["id"], 6)
        await self.publish_n(2, topic="a")
        await self.publish_n(1, topic="b")
        self.assertEqual(await child.wait_exit(), 0, child.stderr_text())
        self.assertEqual([(json.loads(line)["id"], json.loads(line)["topic"])
                          for line in child.lines], [(6, "b"), (10, "b")])

    async def test_exec_per_event(self):
        await self.publish_raw([json.dumps({"type": "event", "topic": "t1", "data": {"n": 1}}),
                                json.dumps({"type": "event", "topic": "t2", "data": {"n": 2}})])
        command = 'cat >> records.ndjson; echo "$EVSTREAM_ID $EVSTREAM_TOPIC" >> env.txt'
        code, out, err = self.tail("--since", "0", "--count", "2", "--exec", command)
        self.assertEqual(code, 0, err)
        self.assertEqual(out, "", "with --exec the records go to the command, not stdout")
        with open(os.path.join(self.tmpdir, "env.txt")) as f:
            self.assertEqual(f.read(), "1 t1\n2 t2\n")
        with open(os.path.join(self.tmpdir, "records.ndjson")) as f:
            records = self.assertRecordLines(f.read().splitlines())
        self.assertEqual([(r["id"], r["topic"], r["data"]) for r in records],
                         [(1, "t1", {"n": 1}), (2, "t2", {"n": 2})])

    # -- lifecycle -------------------------------------------------------------------------

    async def test_resumes_across_server_restart(self):
        total = 1000
        port = self.server.port
        child = self.spawn_tail("--since", "0")
        publisher = self.spawn("publish", "--url", self.server.url, "--retry-timeout", "30s",
                               stdin=subprocess.PIPE)
        publisher.write("".join(json.dumps({"seq": i}) + "\n" for i in range(total // 2)))
        await child.wait_lines(1, timeout=10)
        self.server.kill()  # kill -9 while events are flowing
        await child.wait_stderr(r"reconnecting in", timeout=10)
        publisher.write("".join(json.dumps({"seq": i}) + "\n" for i in range(total // 2, total)))
        self.start_server_on(port, db=self.server.db, name="restarted")
        publisher.close_stdin()
        self.assertEqual(await publisher.wait_exit(timeout=30), 0, publisher.stderr_text())
        lines = await child.wait_lines(total, timeout=20)
        records = self.assertRecordLines(lines)
        self.assertContiguous([r["id"] for r in records], 1, total)
        self.assertEqual(sorted(r["data"]["seq"] for r in records), list(range(total)))
        await child.wait_stderr(r"evstream tail: reconnected")
        # Nothing more arrives after the last one (no replayed duplicates), and Ctrl-C ends it.
        await self.publish_n(1)
        await child.wait_lines(total + 1)
        self.assertEqual(json.loads(child.lines[-1])["id"], total + 1)
        child.send_signal(signal.SIGINT)
        self.assertEqual(await child.wait_exit(), 0, child.stderr_text())
        self.assertEqual(len(child.lines), total + 1)

    async def test_closed_stdout_exits_0_quietly(self):
        await self.publish_n(2)
        # `evstream tail --since 0 | head -1`
        head = subprocess.Popen(["head", "-1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            child = self.spawn_tail("--since", "0", stdout=head.stdin)
        finally:
            head.stdin.close()  # only tail holds the write end now
        try:
            wait_for(lambda: head.poll() is not None, 10, what="head -1 to exit")
            out = head.stdout.read()
        finally:
            if head.poll() is None:
                head.kill()
                head.wait()
            head.stdout.close()
        self.assertEqual(json.loads(out)["id"], 1)
        # tail notices at its next write; keep events coming (bounded) until it does.
        deadline = time.monotonic() + 10
        n = 2
        while child.running() and time.monotonic() < deadline:
            await self.publish_n(1, start=n)
            n += 1
            try:
                wait_for(lambda: not child.running(), 0.2)
            except AssertionError:
                pass
        self.assertFalse(child.running(), "tail kept running with its stdout closed")
        self.assertEqual(child.proc.returncode, 0)
        self.assertEqual(child.stderr_text(), "", "a closed stdout is not an error")

    async def test_sigint_exits_0(self):
        await self.publish_n(1)
        child = self.spawn_tail("-n", "1")
        await child.wait_lines(1)
        child.send_signal(signal.SIGINT)
        self.assertEqual(await child.wait_exit(), 0, child.stderr_text())
        self.assertNotIn("error", child.stderr_text())

    async def test_server_down_at_start(self):
        port = free_port()
        child = self.spawn("tail", "--url", f"ws://127.0.0.1:{port}", "--count", "1")
        await child.wait_stderr(r"evstream tail: .*127\.0\.0\.1:%d.*reconnecting in" % port)
        await child.wait_stderr(r"(?s)reconnecting in.*reconnecting in")  # it keeps trying
        self.assertTrue(child.running())
        server = self.start_server_on(port, name="late")
        await child.wait_stderr(r"evstream tail: reconnected", timeout=10)
        await server.wait_log("connect", path="/ws/events")
        await self.publish_raw(['{"late":1}'], server=server)
        self.assertEqual(await child.wait_exit(), 0, child.stderr_text())
        self.assertEqual([json.loads(line)["data"] for line in child.lines], [{"late": 1}])

    async def test_retry_timeout_and_usage_errors(self):
        url = f"ws://127.0.0.1:{free_port()}"
        started = time.monotonic()
        code, out, err = self.cli("tail", "--url", url, "--retry-timeout", "1s", timeout=20)
        self.assertEqual(code, 69, err)
        self.assertLess(time.monotonic() - started, 5.0)
        self.assertRegex(err, r"evstream: error: cannot reach ws://127\.0\.0\.1:\d+")
        for args in (["--since", "yesterday"], ["--since", "1", "-n", "2"], ["--count", "0"],
                     ["--no-such-flag"]):
            code, out, err = self.tail(*args)
            self.assertEqual(code, 2, (args, err))
            self.assertEqual(out, "")
            self.assertTrue(err.startswith("evstream: error: "), err)


if __name__ == "__main__":
    unittest.main()
