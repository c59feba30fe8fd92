#!/usr/bin/python3
"""make soak: a chaos soak of the real `evstream serve` that proves "nothing lost".

One server on a fixed loopback port and one database; 4 publishers with idempotency keys at a
steady rate plus bursts (2 over /ws/publish, pipelined, resending unacked frames under their keys
after a reconnect; 2 POSTing NDJSON batches with an Idempotency-Key, retrying a batch under the
same key); 500 subscribers spread over worker processes, with churn (drop, then resume with
since= or last=N) and reconnect-and-resume after every server death; 3 slow consumers that stop
reading; and `kill -9` of the server at random intervals, restarted on the same database.

At the end (after a clean SIGTERM stop) it checks, from the database and every client's record:
every acked event stored exactly once under its key with the acked id, nothing stored that was
never sent; every subscriber connection got exactly the stored ids of its topics that it asked
for (since=, last=N or live), in order, with no gap and no duplicate, up to the newest; the slow
consumers were closed with 1008 "slow consumer"; healthy subscribers' p99 latency with slow
consumers connected within 2x of without; server RSS flat; no sanitizer report in the server's
stderr. One summary; exit status 1 on any violation (the work dir is then kept).

    /usr/bin/python3 tests/soak/soak.py --duration 2m      # EVSTREAM_BIN picks the binary
"""
import argparse
import asyncio
import bisect
import json
import multiprocessing
import os
import random
import re
import shutil
import socket
import sqlite3
import sys
import tempfile
import time
from array import array
from collections import OrderedDict, deque

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import websockets  # noqa: E402

from evtest import HOST, FixedPortServer, connect, evstream_bin, free_port  # noqa: E402

TOPICS = ("cam.a", "cam.b", "cam.c")
BULK = "bulk"  # 8 KiB events, only during the latency phases; no healthy subscriber takes them
PAD = "x" * 100
BULK_PAD = "x" * 8000
# Loopback lets ~1.6 MB wait in a non-reading socket before the server's queue even grows, so the
# slow consumers take every topic and the bulk topic (400 kB/s in the latency phases, the same in
# both) makes them slow within seconds. The soak's per-subscriber queue (defaults 4096 messages /
# 1 MiB) is well above what a healthy subscriber ever has queued here.
SERVE_ARGS = ("--client-queue", "1024", "--client-queue-bytes", "256KiB")
BULK_RATE = 25.0  # bulk events/s per WebSocket publisher during the latency phases
BURST = 15  # extra events per publisher every 15-25 s (outside the latency phases)
LATENCY_FLOOR = 0.010  # p99 with slow consumers must be <= 2 x max(p99 without, 10 ms)
RSS_LIMIT = (1.20, 8 << 20)  # last third's median <= first third's x 1.2, or + 8 MiB
SANITIZER = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|"
                       r"SUMMARY: \w+Sanitizer|WARNING: ThreadSanitizer")


def parse_duration(text):
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"bad duration {text!r}: use e.g. 90s, 2m, 10m, 1h")
    return float(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600,
                                    None: 1}[match.group(2)]


def fmt_duration(seconds):
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s"


def percentile(values, q):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def deadline_wait(condition, timeout, interval=0.05):
    """Polls `condition()` until it is truthy (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(interval)
    return True


async def recv_msg(conn, timeout):
    """The next message on a multiprocessing pipe, without blocking the event loop."""
    ready = await asyncio.get_running_loop().run_in_executor(None, conn.poll, timeout)
    if not ready:
        raise TimeoutError(f"no message from the other process within {timeout}s")
    return conn.recv()


async def http_request(port, method, path, body=b"", headers=None, timeout=10.0):
    """One HTTP/1.1 request on its own connection: (status, body bytes)."""
    async def exchange():
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            head = (f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n"
                    f"Content-Length: {len(body)}\r\n"
                    + "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items()) + "\r\n")
            writer.write(head.encode() + body)
            await writer.drain()
            status_line = await reader.readline()
            fields = {}
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                fields[name.strip().lower()] = value.strip()
            if "content-length" in fields:
                data = await reader.readexactly(int(fields["content-length"]))
            else:
                data = await reader.read()
            return int(status_line.split()[1]), data
        finally:
            writer.close()
    return await asyncio.wait_for(exchange(), timeout)


# ---------------------------------------------------------------------------------------------
# Subscriber workers (child processes)

class Segment:
    """One subscriber connection: how it started and every event id it received."""
    __slots__ = ("mode", "arg", "head", "ids", "close_code")

    def __init__(self, mode, arg):
        self.mode = mode  # "live", "since" or "last"
        self.arg = arg
        self.head = None  # last_id of the greeting: the newest stored id at connect
        self.ids = array("q")
        self.close_code = None


class SubscriberRecord:
    def __init__(self, index, topics):
        self.index = index
        self.topics = topics
        self.segments = []
        self.cursor = None  # the id to resume after (None: never connected)
        self.errors = []  # protocol violations seen online (wrong topic, error messages)


class Worker:
    """A share of the subscribers in one process, so Python's one core per process is not the
    bottleneck. Commands arrive on `conn`: quiesce, targets, verify."""

    def __init__(self, conn, index, port, count, cfg):
        self.conn = conn
        self.index = index
        self.port = port
        self.cfg = cfg
        self.rng = random.Random(cfg["seed"] * 1000 + index)
        self.subs = []
        for n in range(count):
            topics = tuple(sorted(self.rng.sample(TOPICS, self.rng.choice((1, 1, 2)))))
            self.subs.append(SubscriberRecord(n, topics))
        self.quiet = False  # no more churn
        self.stopping = False
        self.latency = {"A": [], "B": []}
        self.closes = {}  # close code -> count
        self.connect_failures = 0

    async def run(self):
        asyncio.get_running_loop().set_debug(False)
        tasks = [asyncio.ensure_future(self.subscriber(sub)) for sub in self.subs]
        ok = await deadline_wait(lambda: all(s.segments and s.segments[0].head is not None
                                             for s in self.subs), 120)
        self.conn.send(("ready", ok))
        await self.commands(tasks)

    async def commands(self, tasks):
        while True:
            command = await recv_msg(self.conn, 24 * 3600)
            if command[0] == "quiesce":
                self.quiet = True
            elif command[0] == "targets":
                targets = command[1]
                want = {s.index: max((targets.get(t, 0) for t in s.topics), default=0)
                        for s in self.subs}
                await deadline_wait(lambda: all((s.cursor or 0) >= want[s.index]
                                                for s in self.subs), command[2], interval=0.2)
                behind = sum(1 for s in self.subs if (s.cursor or 0) < want[s.index])
                self.stopping = True
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                self.conn.send(("caught_up", behind))
            elif command[0] == "verify":
                self.conn.send(("result", self.verify(command[1])))
                return

    def url(self, sub, mode, arg):
        query = [f"topic={t}" for t in sub.topics]
        if mode == "since":
            query.append(f"since={arg}")
        elif mode == "last":
            query.append(f"last={arg}")
        return f"ws://{HOST}:{self.port}/ws/events?" + "&".join(query)

    async def subscriber(self, sub):
        rng = random.Random(self.rng.random())
        backoff = 0.1
        churned = False
        ws = None
        try:
            while not self.stopping:
                if sub.cursor is None:
                    mode, arg = rng.choice((("live", None), ("last", rng.randint(1, 50))))
                elif churned and rng.random() < 0.2:
                    mode, arg = "last", rng.randint(1, 50)
                else:
                    mode, arg = "since", sub.cursor
                try:
                    # max_queue=None: websockets 10.4 leaves a task pending forever when a
                    # connection with a full receive queue is aborted; this loop reads all anyway.
                    ws = await connect(self.url(sub, mode, arg), open_timeout=10,
                                       max_queue=None)
                except (OSError, asyncio.TimeoutError, websockets.WebSocketException):
                    self.connect_failures += 1
                    await asyncio.sleep(backoff * rng.uniform(0.5, 1.5))  # backoff pacing
                    backoff = min(backoff * 2, 2.0)
                    continue
                backoff = 0.1
                segment = Segment(mode, arg)
                sub.segments.append(segment)
                churned = await self.follow(sub, ws, segment, rng)
                ws = None
                if churned:
                    await asyncio.sleep(rng.uniform(0, 1.0))  # offline for a moment
        except asyncio.CancelledError:
            if ws is not None:
                ws.transport.abort()
            raise

    async def follow(self, sub, ws, segment, rng):
        """Reads one connection until it drops or churn drops it; True when churn did."""
        churn_at = time.monotonic() + rng.expovariate(1.0 / self.cfg["churn_mean"])
        try:
            greeting = json.loads(await asyncio.wait_for(ws.recv(), 10))
            segment.head = greeting["last_id"]
            if segment.mode == "since":
                sub.cursor = min(segment.arg, segment.head)
            elif segment.mode == "live" or sub.cursor is None:
                sub.cursor = segment.head
            while True:
                now = time.monotonic()
                if not self.quiet and now >= churn_at:
                    await self.drop(ws, rng)
                    return True
                # Bounded slices: churn is re-checked, and a silent server (pings every 30 s)
                # is noticed within 75 s.
                wait = 75.0 if self.quiet else min(75.0, churn_at - now)
                try:
                    raw = await asyncio.wait_for(ws.recv(), max(wait, 0.001))
                except asyncio.TimeoutError:
                    if wait < 75.0:
                        continue  # churn is due
                    raise
                msg = json.loads(raw)
                kind = msg.get("type")
                if kind == "event":
                    ident = msg["id"]
                    segment.ids.append(ident)
                    sub.cursor = ident
                    if msg["topic"] not in sub.topics:
                        sub.errors.append(f"event {ident} of topic {msg['topic']}")
                    data = msg["data"]
                    phase = data.get("ph")
                    if phase in self.latency and ident > segment.head:
                        self.latency[phase].append(time.monotonic() - data["ts"])
                elif kind == "ping":
                    await ws.send(json.dumps({"type": "pong", "timestamp": msg["timestamp"]}))
                else:
                    sub.errors.append(f"unexpected message {raw[:200]}")
        except asyncio.TimeoutError:
            sub.errors.append("nothing received for 75 s (or no greeting within 10 s)")
            ws.transport.abort()
        except websockets.ConnectionClosed as closed:
            segment.close_code = closed.code
            self.closes[closed.code] = self.closes.get(closed.code, 0) + 1
        except OSError:
            ws.transport.abort()
        return False

    @staticmethod
    async def drop(ws, rng):
        """Churn: half the time a clean close, half the time the TCP connection just goes."""
        if rng.random() < 0.5:
            try:
                await asyncio.wait_for(ws.close(), 3)
                return
            except (asyncio.TimeoutError, OSError, websockets.WebSocketException):
                pass
        ws.transport.abort()

    def verify(self, db_path):
        """Checks every segment against the stored ids of its topics."""
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        by_topic = {t: array("q") for t in TOPICS}
        for ident, topic in db.execute("SELECT id, topic FROM events ORDER BY id"):
            by_topic.setdefault(topic, array("q")).append(ident)
        db.close()
        stored = {}
        result = {"connections": 0, "resumes_since": 0, "resumes_last": 0, "gaps": 0,
                  "duplicates": 0, "phantoms": 0, "tail_behind": 0, "errors": 0, "examples": [],
                  "received": 0, "closes": self.closes, "latency": self.latency,
                  "connect_failures": self.connect_failures}

        def example(text):
            if len(result["examples"]) < 10:
                result["examples"].append(f"worker {self.index}: {text}")

        for sub in self.subs:
            if sub.topics not in stored:
                stored[sub.topics] = sorted(i for t in sub.topics for i in by_topic[t])
            ids = stored[sub.topics]
            result["errors"] += len(sub.errors)
            for error in sub.errors[:2]:
                example(f"subscriber {sub.index} {sub.topics}: {error}")
            for n, seg in enumerate(sub.segments):
                if seg.head is None:
                    continue
                result["connections"] += 1
                if n > 0:
                    result["resumes_" + ("last" if seg.mode == "last" else "since")] += 1
                result["received"] += len(seg.ids)
                if seg.mode == "last":
                    start = max(0, bisect.bisect_right(ids, seg.head) - seg.arg)
                else:
                    cursor = seg.head if seg.mode == "live" else min(seg.arg, seg.head)
                    start = bisect.bisect_right(ids, cursor)
                expected = ids[start:start + len(seg.ids)]
                got = list(seg.ids)
                if got != expected:
                    self.classify(got, ids, start, result)
                    at = next(i for i, (a, b) in enumerate(zip(got + [None], expected + [None]))
                              if a != b)
                    example(f"subscriber {sub.index} {sub.topics} segment {n} ({seg.mode} "
                            f"{seg.arg}, head {seg.head}): got {got[at:at + 5]} where "
                            f"{expected[at:at + 5]} was due (position {at})")
            if ids and (sub.cursor or 0) < ids[-1]:
                result["tail_behind"] += 1
                example(f"subscriber {sub.index} {sub.topics} ended at {sub.cursor}, "
                        f"newest stored {ids[-1]}")
        return result

    @staticmethod
    def classify(got, ids, start, result):
        """Counts what went wrong in a segment: ids missing, repeated, or never stored."""
        known = set(ids)
        seen = set()
        last = None
        for ident in got:
            if ident in seen or (last is not None and ident <= last):
                result["duplicates"] += 1
            elif ident not in known:
                result["phantoms"] += 1
            seen.add(ident)
            last = ident if last is None else max(last, ident)
        if got:
            end = bisect.bisect_right(ids, max(got))
            result["gaps"] += sum(1 for i in ids[start:end] if i not in seen)


def worker_main(conn, index, port, count, cfg):
    asyncio.run(Worker(conn, index, port, count, cfg).run())


# ---------------------------------------------------------------------------------------------
# The orchestrator: server, publishers, slow consumers, chaos

class State:
    def __init__(self, duration):
        self.t0 = time.monotonic()
        self.duration = duration
        self.phase = "chaos"  # tagged into every event ("A"/"B": latency windows)
        self.quiet = False  # no kills, no bursts
        self.stopping = False  # publishers drain and stop
        self.burst = 0  # bumped to ask every publisher for a burst
        self.bulk = False  # WebSocket publishers add the bulk topic (latency window)

    def elapsed(self):
        return time.monotonic() - self.t0


class ServerControl:
    """The one `evstream serve` on a fixed port and database, killed and restarted."""

    def __init__(self, workdir, port, db, sanitized):
        self.workdir = workdir
        self.port = port
        self.db = db
        self.sanitized = sanitized
        self.server = None
        self.incarnations = []  # stderr paths
        self.restarts = 0
        self.crashes = []  # unexpected exits
        self.rss = []  # (elapsed, incarnation, seconds since its start, bytes)
        self.started_at = 0.0
        self.slow_log_offset = 0
        self.slow_ids = set()
        self.restarting = False

    async def start(self):
        deadline = time.monotonic() + 30
        while True:
            name = f"serve{len(self.incarnations) + 1}"
            server = FixedPortServer(self.workdir, self.port, SERVE_ARGS, db=self.db, name=name)
            self.incarnations.append(server.stderr_path)
            try:
                server.start()
                break
            except AssertionError as error:  # e.g. the port not free yet: bounded retry
                if time.monotonic() > deadline:
                    raise
                print(f"soak: restart failed ({error}); retrying", file=sys.stderr)
                await asyncio.sleep(0.5)
        self.server = server
        self.started_at = time.monotonic()
        self.slow_log_offset = 0

    def check_alive(self):
        """Records an exit we did not cause; True while running."""
        if self.server.running():
            return True
        if self.server.proc.returncode is not None and not getattr(self.server, "killed", False):
            self.crashes.append(f"{self.server.stderr_path}: exit {self.server.proc.returncode}")
            self.server.killed = True
        return False

    async def kill_and_restart(self, rng):
        self.restarting = True
        try:
            self.check_alive()
            self.server.killed = True
            self.server.kill()
            self.server.close_stdout()
            self.restarts += 1
            await asyncio.sleep(rng.uniform(0.2, 2.0))  # downtime: clients see refused connects
            await self.start()
        finally:
            self.restarting = False

    def sample_rss(self, state):
        try:
            with open(f"/proc/{self.server.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        self.rss.append((state.elapsed(), len(self.incarnations),
                                         time.monotonic() - self.started_at,
                                         int(line.split()[1]) * 1024))
        except (FileNotFoundError, ProcessLookupError):
            pass

    def scan_slow(self):
        """Connection ids the current server has logged as slow consumers."""
        with open(self.server.stderr_path, "rb") as f:
            f.seek(self.slow_log_offset)
            chunk = f.read()
        end = chunk.rfind(b"\n") + 1
        self.slow_log_offset += end
        for line in chunk[:end].decode("utf-8", "replace").splitlines():
            match = re.search(r" warn slow consumer id=(\S+)", line)
            if match:
                self.slow_ids.add(match.group(1))
        return self.slow_ids

    def sanitizer_reports(self):
        reports = []
        for path in self.incarnations:
            try:
                with open(path, "rb") as f:
                    text = f.read().decode("utf-8", "replace")
            except FileNotFoundError:
                continue
            reports += [f"{os.path.basename(path)}: {line.strip()}"
                        for line in text.splitlines() if SANITIZER.search(line)]
        return reports


class WsPublisher:
    """Pipelines keyed frames on /ws/publish; after a lost connection resends every unacked
    frame, in order, under the same key."""

    def __init__(self, name, port, rate, state, rng):
        self.name, self.port, self.rate, self.state, self.rng = name, port, rate, state, rng
        self.pending = OrderedDict()  # key -> frame text, until acked
        self.acks = {}  # key -> id
        self.sent = set()
        self.conflicts = []  # a key acked with two different ids
        self.rejected = []
        self.duplicate_acks = 0
        self.seq = 0

    def make(self, bulk=False):
        key = f"{self.name}-{self.seq}"
        self.seq += 1
        topic = BULK if bulk else self.rng.choice(TOPICS)
        data = {"k": key, "ts": time.monotonic(), "ph": self.state.phase,
                "pad": BULK_PAD if bulk else PAD}
        self.pending[key] = json.dumps({"type": "event", "topic": topic, "key": key,
                                        "data": data})
        self.sent.add(key)
        return key

    def done(self):
        return self.state.stopping and not self.pending

    async def run(self):
        backoff = 0.1
        while not self.done():
            try:
                ws = await connect(f"ws://{HOST}:{self.port}/ws/publish", open_timeout=5,
                                   max_queue=None)
            except (OSError, asyncio.TimeoutError, websockets.WebSocketException):
                await asyncio.sleep(backoff * self.rng.uniform(0.5, 1.5))
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = 0.1
            try:
                await self.session(ws)
            except (websockets.ConnectionClosed, OSError):
                pass
            finally:
                ws.transport.abort()

    async def session(self, ws):
        in_flight = deque()
        retry = []

        async def reader():
            while True:
                reply = json.loads(await ws.recv())
                key = in_flight.popleft()
                if reply.get("type") == "ack":
                    self.duplicate_acks += bool(reply.get("duplicate"))
                    if self.acks.setdefault(key, reply["id"]) != reply["id"]:
                        self.conflicts.append((key, self.acks[key], reply["id"]))
                    self.pending.pop(key, None)
                elif "retry" in reply.get("message", ""):
                    retry.append(key)  # busy or shutting down: nothing stored, send again
                else:
                    self.rejected.append((key, reply))
                    self.pending.pop(key, None)

        async def send(key):
            in_flight.append(key)
            await ws.send(self.pending[key])

        read_task = asyncio.ensure_future(reader())
        try:
            for key in list(self.pending):  # unacked from the last connection: same keys
                await send(key)
            burst_seen = self.state.burst
            next_at = next_bulk = time.monotonic()
            while not self.done():
                if read_task.done():
                    read_task.result()  # raises ConnectionClosed
                while retry:
                    await send(retry.pop(0))
                if not self.state.stopping and len(self.pending) < 2000:
                    if self.state.burst != burst_seen:
                        burst_seen = self.state.burst
                        for _ in range(BURST):
                            await send(self.make())
                    if time.monotonic() >= next_at:
                        await send(self.make())
                        next_at += self.rng.expovariate(self.rate)
                        next_at = max(next_at, time.monotonic() - 1.0)
                    if self.state.bulk and time.monotonic() >= next_bulk:
                        await send(self.make(bulk=True))
                        next_bulk = max(next_bulk + 1.0 / BULK_RATE, time.monotonic() - 1.0)
                await asyncio.sleep(max(0.0, min(0.02, next_at - time.monotonic())))
            await ws.close()
        finally:
            read_task.cancel()


class HttpPublisher:
    """POSTs NDJSON batches with an Idempotency-Key; a failed batch is retried, same body and
    key, until it gets its 201."""

    def __init__(self, name, port, rate, state, rng):
        self.name, self.port, self.rate, self.state, self.rng = name, port, rate, state, rng
        self.acks = {}  # key (IDEMPOTENCY:LINE) -> id
        self.sent = set()
        self.conflicts = []
        self.rejected = []
        self.retries = 0
        self.batch = 0
        self.pending = {}

    def make_batch(self, size):
        key = f"{self.name}-{self.batch}"
        self.batch += 1
        lines = []
        for line in range(1, size + 1):
            data = {"k": f"{key}:{line}", "ts": time.monotonic(), "ph": self.state.phase,
                    "pad": PAD}
            lines.append(json.dumps({"type": "event", "topic": self.rng.choice(TOPICS),
                                     "data": data}))
            self.sent.add(f"{key}:{line}")
        return key, ("\n".join(lines) + "\n").encode()

    async def post(self, key, body):
        backoff = 0.1
        self.pending[key] = body
        while True:
            try:
                status, reply = await http_request(
                    self.port, "POST", "/api/events", body,
                    {"Content-Type": "application/x-ndjson", "Idempotency-Key": key})
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, IndexError,
                    ValueError):
                status, reply = None, b""
            if status == 201:
                for line, ident in enumerate(json.loads(reply)["ids"], start=1):
                    if self.acks.setdefault(f"{key}:{line}", ident) != ident:
                        self.conflicts.append((f"{key}:{line}", self.acks[f"{key}:{line}"], ident))
                del self.pending[key]
                return
            if status is not None and status not in (503,):
                self.rejected.append((key, status, reply[:200]))
                del self.pending[key]
                return
            self.retries += 1
            await asyncio.sleep(backoff * self.rng.uniform(0.5, 1.5))
            backoff = min(backoff * 2, 2.0)

    async def run(self):
        batch_size = 4
        burst_seen = self.state.burst
        next_at = time.monotonic()
        while not self.state.stopping:
            if self.state.burst != burst_seen:
                burst_seen = self.state.burst
                await self.post(*self.make_batch(BURST))
            if time.monotonic() >= next_at:
                await self.post(*self.make_batch(batch_size))
                next_at += self.rng.expovariate(self.rate / batch_size)
                next_at = max(next_at, time.monotonic() - 1.0)
            await asyncio.sleep(max(0.0, min(0.05, next_at - time.monotonic())))


class SlowConsumers:
    """Subscribers (every topic) that read their greeting and then nothing, behind a tiny receive
    buffer; each, once the server logged it as a slow consumer, is read to its close frame."""

    def __init__(self, port):
        self.port = port
        self.results = []  # (connection id, logged as slow, close code, close reason)

    async def open_one(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (HOST, self.port))
        ws = await connect(f"ws://{HOST}:{self.port}/ws/events", sock=sock, max_queue=1,
                           read_limit=1024)
        greeting = json.loads(await asyncio.wait_for(ws.recv(), 10))
        return greeting["connection_id"], ws

    async def cycle(self, server, until):
        """Keeps one slow consumer connected until `until`, replacing each one that is closed."""
        while time.monotonic() < until:
            cid, ws = await self.open_one()
            logged = await deadline_wait(lambda: cid in server.scan_slow(), 60, interval=0.2)
            code, reason = None, "no close frame within 10 s of silence"
            try:
                while True:  # everything queued before the close, then the close frame
                    await asyncio.wait_for(ws.recv(), 10)
            except websockets.ConnectionClosed as closed:
                code, reason = closed.code, closed.reason
            except asyncio.TimeoutError:
                ws.transport.abort()
            self.results.append((cid, logged, code, reason))
            if not logged:
                return


class Soak:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.state = State(args.duration)
        self.workdir = tempfile.mkdtemp(prefix="evstream-soak-")
        self.port = free_port()
        self.db = os.path.join(self.workdir, "soak.db")
        self.sanitized = bool(os.environ.get("EVSTREAM_SANITIZED"))
        self.server = ServerControl(self.workdir, self.port, self.db, self.sanitized)
        self.slow = SlowConsumers(self.port)
        self.violations = []
        d = args.duration
        self.window = min(60.0, max(20.0, d / 6))  # A+B, twice
        if d >= 600:
            self.kill_every = (30.0, 90.0)
        else:  # short runs: 3 or more kills in what the latency window leaves
            low = max(5.0, (d - 2 * self.window - 10) / 8)
            self.kill_every = (low, 2 * low)
        self.churn_mean = 30.0 if d >= 600 else 15.0
        self.latency = {}

    # -- chaos ------------------------------------------------------------------------------
    async def chaos(self):
        while not self.state.stopping:
            at = time.monotonic() + self.rng.uniform(*self.kill_every)
            await deadline_wait(lambda: time.monotonic() >= at or self.state.stopping,
                                self.kill_every[1] + 1, interval=0.2)
            if self.state.stopping:
                return
            # The quiet window (latency phases) is bounded; wait it out, then kill.
            while self.state.quiet and not self.state.stopping:
                await asyncio.sleep(0.2)
            if self.state.stopping:
                return
            await self.server.kill_and_restart(self.rng)

    async def bursts(self):
        while not self.state.stopping:
            at = time.monotonic() + self.rng.uniform(15, 25)
            await deadline_wait(lambda: time.monotonic() >= at or self.state.stopping, 26,
                                interval=0.2)
            if not self.state.quiet and not self.state.stopping:
                self.state.burst += 1

    async def monitor(self):
        """RSS every second; a server that died by itself is a crash (and is restarted)."""
        while not self.state.stopping:
            if not self.server.restarting and not self.server.check_alive():
                await self.server.start()
            self.server.sample_rss(self.state)
            await asyncio.sleep(1.0)  # sampling period

    async def health(self):
        status, body = await http_request(self.port, "GET", "/api/health")
        return json.loads(body) if status == 200 else {}

    async def phases(self):
        """At 35% of the run: settle, phase A (no slow consumers), phase B (slow consumers)."""
        await deadline_wait(lambda: self.state.elapsed() >= 0.35 * self.args.duration,
                            self.args.duration)
        self.state.quiet = True
        await asyncio.sleep(2.0)  # a restart in progress finishes; bursts drain
        want = self.args.subscribers

        async def all_connected():
            try:
                return (await self.health()).get("subscribers", 0) >= want
            except (OSError, asyncio.TimeoutError, ValueError, IndexError):
                return False
        deadline = time.monotonic() + 60
        while not await all_connected() and time.monotonic() < deadline:
            await asyncio.sleep(0.5)  # polling with a deadline
        await asyncio.sleep(3.0)  # catch-up after the last reconnects drains
        # A, B, A, B: without, then with slow consumers, twice, so a drift in the machine's load
        # (it is shared) does not land on one side only. The bulk topic runs throughout.
        self.state.bulk = True
        for _ in range(2):
            self.state.phase = "A"
            await asyncio.sleep(self.window / 2)
            self.state.phase = "B"
            until = time.monotonic() + self.window / 2
            slots = [asyncio.ensure_future(self.slow.cycle(self.server, until))
                     for _ in range(self.args.slow)]
            await deadline_wait(lambda: time.monotonic() >= until, self.window)
            self.state.phase = "settle"  # the last slow consumers are still being closed
            await asyncio.gather(*slots)
            await asyncio.sleep(1.0)  # their queues are gone; deliveries settle
        self.state.bulk = False
        self.state.phase = "chaos"
        self.state.quiet = False

    # -- the run ----------------------------------------------------------------------------
    async def run(self):
        asyncio.get_running_loop().set_debug(False)
        await self.server.start()
        cfg = {"seed": self.args.seed, "churn_mean": self.churn_mean}
        ctx = multiprocessing.get_context("spawn")
        workers = []
        per = [self.args.subscribers // self.args.workers + (i < self.args.subscribers %
                                                             self.args.workers)
               for i in range(self.args.workers)]
        for i, count in enumerate(per):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(child, i, self.port, count, cfg),
                               daemon=True)
            proc.start()
            workers.append((proc, parent))
        for _, conn in workers:
            _, ok = await recv_msg(conn, 150)
            if not ok:
                self.violations.append("subscribers did not all connect within 120 s")
        self.state.t0 = time.monotonic()
        print(f"soak: {self.args.subscribers} subscribers connected; running "
              f"{fmt_duration(self.args.duration)} (kill -9 every {self.kill_every[0]:.0f}-"
              f"{self.kill_every[1]:.0f} s) in {self.workdir}", file=sys.stderr)

        rate = self.args.rate
        pubs = [WsPublisher(f"ws{i}", self.port, rate * 0.3, self.state,
                            random.Random(self.rng.random())) for i in range(2)]
        pubs += [HttpPublisher(f"http{i}", self.port, rate * 0.2, self.state,
                               random.Random(self.rng.random())) for i in range(2)]
        pub_tasks = [asyncio.ensure_future(p.run()) for p in pubs]
        chaos = [asyncio.ensure_future(c) for c in (self.chaos(), self.bursts(), self.monitor(),
                                                     self.phases())]
        await deadline_wait(lambda: self.state.elapsed() >= self.args.duration,
                            self.args.duration + 1, interval=0.5)
        # A latency phase still running finishes (it is bounded) before the run ends.
        await asyncio.wait_for(chaos[3], 4 * self.window + 200)
        self.state.stopping = True
        for _, conn in workers:
            conn.send(("quiesce",))
        await asyncio.wait_for(asyncio.gather(*chaos[:3]), 60)
        if not self.server.check_alive():
            await self.server.start()
        done, _ = await asyncio.wait(pub_tasks, timeout=120)
        if len(done) < len(pub_tasks):
            self.violations.append("publishers did not get every event acked within 120 s")
            for task in pub_tasks:
                task.cancel()

        db = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        targets = dict(db.execute("SELECT topic, max(id) FROM events GROUP BY topic").fetchall())
        db.close()
        behind = 0
        for _, conn in workers:
            conn.send(("targets", targets, 120))
        for _, conn in workers:
            behind += (await recv_msg(conn, 180))[1]
        code = await self.server.server.stop()
        self.server.server.close_stdout()
        if code != 0:
            self.violations.append(f"the final SIGTERM stop exited {code}")
        results = []
        for _, conn in workers:
            conn.send(("verify", self.db))
        for proc, conn in workers:
            results.append((await recv_msg(conn, 300))[1])
            proc.join(30)
        return self.verify(pubs, results)

    # -- verification -----------------------------------------------------------------------
    def verify(self, pubs, results):
        v = self.violations
        db = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        rows = db.execute("SELECT id, key, data FROM events ORDER BY id").fetchall()
        db.close()
        by_key = {}
        by_identity = {}
        for ident, key, data in rows:
            by_key.setdefault(key, []).append(ident)
            by_identity.setdefault(json.loads(data)["k"], []).append(ident)
        acked = {}
        sent = set()
        for pub in pubs:
            acked.update(pub.acks)
            sent |= pub.sent
            for conflict in pub.conflicts[:3]:
                v.append(f"{pub.name}: key {conflict[0]} acked with ids {conflict[1:]}")
            for rejected in pub.rejected[:3]:
                v.append(f"{pub.name}: rejected {rejected}")
        lost = [k for k, i in acked.items() if by_key.get(k) != [i]]
        duplicated = {k: ids for k, ids in by_identity.items() if len(ids) > 1}
        duplicated.update({k: ids for k, ids in by_key.items() if len(ids) > 1})
        phantoms = [k for k in by_identity if k not in sent]
        wrong_key = [ident for ident, key, data in rows if key != json.loads(data)["k"]]
        unacked = len(sent) - len(acked)
        if lost:
            v.append(f"{len(lost)} acked events lost or stored under another id, e.g. "
                     f"{[(k, acked[k], by_key.get(k)) for k in lost[:5]]}")
        if duplicated:
            v.append(f"{len(duplicated)} events stored more than once, e.g. "
                     f"{list(duplicated.items())[:5]}")
        if phantoms:
            v.append(f"{len(phantoms)} stored events nobody sent, e.g. {phantoms[:5]}")
        if wrong_key:
            v.append(f"{len(wrong_key)} events stored under a key not their own: {wrong_key[:5]}")
        if unacked:
            v.append(f"{unacked} events sent but never acked")

        subs = {k: sum(r[k] for r in results)
                for k in ("connections", "resumes_since", "resumes_last", "gaps", "duplicates",
                          "phantoms", "tail_behind", "errors", "received", "connect_failures")}
        closes = {}
        for r in results:
            for code, n in r["closes"].items():
                closes[code] = closes.get(code, 0) + n
            v.extend(r["examples"][:5])
        for key in ("gaps", "duplicates", "phantoms", "tail_behind", "errors"):
            if subs[key]:
                v.append(f"subscribers: {subs[key]} {key.replace('_', ' ')}")

        slow_ok = [r for r in self.slow.results if r[1:] == (True, 1008, "slow consumer")]
        if len(slow_ok) < self.args.slow or len(slow_ok) != len(self.slow.results):
            v.append(f"slow consumers: not all closed with 1008 \"slow consumer\": "
                     f"{[r for r in self.slow.results if r not in slow_ok]}")

        lat_a = [x for r in results for x in r["latency"]["A"]]
        lat_b = [x for r in results for x in r["latency"]["B"]]
        p99_a, p99_b = percentile(lat_a, 0.99), percentile(lat_b, 0.99)
        if p99_a is None or p99_b is None:
            v.append(f"latency: no samples (without {len(lat_a)}, with {len(lat_b)})")
        elif p99_b > 2 * max(p99_a, LATENCY_FLOOR):
            v.append(f"latency: p99 with slow consumers {p99_b * 1e3:.1f} ms > 2 x max("
                     f"{p99_a * 1e3:.1f} ms, {LATENCY_FLOOR * 1e3:.0f} ms)")

        rss = [s for s in self.server.rss if s[2] >= 10.0]  # each incarnation's first 10 s out
        rss_first = rss_last = None
        if len(rss) >= 6:
            third = len(rss) // 3
            rss_first = sorted(s[3] for s in rss[:third])[third // 2]
            rss_last = sorted(s[3] for s in rss[-third:])[third // 2]
            limit = max(rss_first * RSS_LIMIT[0], rss_first + RSS_LIMIT[1])
            if rss_last > limit and not self.sanitized:
                v.append(f"server RSS grew: {rss_first / 2**20:.1f} MiB -> "
                         f"{rss_last / 2**20:.1f} MiB (limit {limit / 2**20:.1f} MiB)")
        else:
            v.append(f"server RSS: only {len(rss)} samples after warm-up")
        reports = self.server.sanitizer_reports()
        if reports:
            v.append(f"{len(reports)} sanitizer report lines, e.g. {reports[:3]}")
        if self.server.restarts < 2:
            v.append(f"only {self.server.restarts} kill -9 restarts; the soak needs 2 or more")
        for crash in self.server.crashes:
            v.append(f"server died by itself: {crash}")

        n_ws = sum(len(p.acks) for p in pubs if isinstance(p, WsPublisher))
        n_http = len(acked) - n_ws
        mib = (lambda b: f"{b / 2**20:.1f} MiB" if b is not None else "n/a")
        ms = (lambda s: f"{s * 1e3:.1f} ms" if s is not None else "n/a")
        ok = not v
        retries = sum(getattr(p, "retries", 0) for p in pubs)
        dup_acks = sum(getattr(p, "duplicate_acks", 0) for p in pubs)
        resumes = subs["resumes_since"] + subs["resumes_last"]
        rss_max = max((s[3] for s in self.server.rss), default=None)
        build = evstream_bin() + (", sanitized" if self.sanitized else "")
        print("\n".join([
            "",
            f"evstream soak: {'PASS' if ok else 'FAIL'} ({fmt_duration(self.args.duration)}, "
            f"seed {self.args.seed}, {build})",
            f"  events acked    {len(acked)} (ws {n_ws}, http {n_http}; {retries} http retries, "
            f"{dup_acks} duplicate acks); stored {len(rows)}",
            f"  restarts        {self.server.restarts} (kill -9), crashes "
            f"{len(self.server.crashes)}",
            f"  subscribers     {self.args.subscribers}: {subs['connections']} connections, "
            f"resumes {resumes} (since= {subs['resumes_since']}, last= {subs['resumes_last']}), "
            f"{subs['received']} events received; closes {dict(sorted(closes.items()))}",
            f"  lost {len(lost)}  duplicated {len(duplicated)}  gaps {subs['gaps']}  "
            f"out-of-order/repeated {subs['duplicates']}  phantom "
            f"{subs['phantoms'] + len(phantoms)}  behind at end {subs['tail_behind']}",
            f"  slow consumers  {len(slow_ok)} of {len(self.slow.results)} closed 1008 "
            f"\"slow consumer\" ({self.args.slow} at a time)",
            f"  latency p99     without slow consumers {ms(p99_a)} ({len(lat_a)} samples), with "
            f"{ms(p99_b)} ({len(lat_b)}); limit 2 x max(without, {LATENCY_FLOOR * 1e3:.0f} ms)",
            f"  server RSS      start {mib(rss_first)}, end {mib(rss_last)} (medians of the first "
            f"and last third; limit x{RSS_LIMIT[0]} or +{RSS_LIMIT[1] >> 20} MiB"
            f"{'; not enforced under ASan' if self.sanitized else ''}), max {mib(rss_max)}",
            f"  sanitizer       {len(reports)} reports"]))
        for line in v:
            print(f"  VIOLATION: {line}")
        return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=parse_duration, default=parse_duration("10m"),
                        help="how long the chaos runs (default 10m; e.g. 90s, 2m, 30m)")
    parser.add_argument("--subscribers", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2, help="subscriber processes")
    parser.add_argument("--rate", type=float, default=12.0,
                        help="steady events/s over all 4 publishers, plus bursts")
    parser.add_argument("--slow", type=int, default=3, help="slow consumers")
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    args = parser.parse_args()
    soak = Soak(args)
    ok = False
    try:
        # Every wait inside is bounded; this is the backstop for the whole run.
        ok = asyncio.run(asyncio.wait_for(soak.run(), args.duration + 900))
    finally:
        if soak.server.server is not None and soak.server.server.running():
            soak.server.server.kill()
        if ok:
            shutil.rmtree(soak.workdir, ignore_errors=True)
        else:
            print(f"soak: kept {soak.workdir} (server stderr: serve*.stderr)", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
