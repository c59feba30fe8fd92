"""Shared helpers for the evstream integration tests (tests/integration/test_*.py).

Each test starts its own `evstream serve --port 0` in a fresh temp dir, reads the URL line the
server prints on stdout (with a deadline), captures its stderr to a file, and at teardown stops only
the PID it started. On failure the temp dir is kept and the stderr path printed. Every wait has a
deadline: `wait_for` / `async_wait_for` poll a condition, and every receive is bounded by a timeout.

Clients are Debian's python3-websockets 10.4 (asyncio API), so run these with /usr/bin/python3.
All traffic goes to 127.0.0.1.
"""
import asyncio
import base64
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import websockets

HOST = "127.0.0.1"
STARTUP_TIMEOUT = 10.0  # seconds for serve to print its URL
EXIT_TIMEOUT = 10.0  # seconds for serve to exit after SIGTERM/SIGINT
RECV_TIMEOUT = 5.0  # default bound on one receive


def evstream_bin():
    path = os.environ.get("EVSTREAM_BIN")
    if not path:
        here = os.path.dirname(os.path.abspath(__file__))
        path = os.path.join(here, "..", "..", "build", "evstream")
    if not os.access(path, os.X_OK):
        raise AssertionError(f"evstream binary not found at {path}; build it or set EVSTREAM_BIN")
    return path


def require_tool(name):
    """The path of a tool the tests need; a clear failure (never a skip) when it is missing."""
    path = shutil.which(name)
    if path is None:
        raise AssertionError(
            f"`{name}` is not installed but these tests need it: run `make deps` (it is in the "
            f"Makefile PACKAGES list) or apt-get install it")
    return path


# ---------------------------------------------------------------------------------------------
# Polling with a deadline

def wait_for(condition, timeout, interval=0.01, what=None):
    """Polls `condition()` until it returns a truthy value (returned) or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(interval)


async def async_wait_for(condition, timeout, interval=0.01, what=None):
    """wait_for for async tests: yields to the event loop between polls."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        await asyncio.sleep(interval)


# ---------------------------------------------------------------------------------------------
# The server process

class LogRecord:
    """One text log line: `<time> <level> <message words> key=value key="quoted value" ...`."""

    FIELD = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)')

    def __init__(self, line):
        self.line = line
        parts = line.split(" ", 2)
        self.time = parts[0] if parts else ""
        self.level = parts[1] if len(parts) > 1 else ""
        rest = parts[2] if len(parts) > 2 else ""
        match = re.search(r"(?:^| )[A-Za-z_][A-Za-z0-9_]*=", rest)
        self.msg = rest[: match.start()].strip() if match else rest.strip()
        self.fields = {}
        for key, value in self.FIELD.findall(rest[match.start():] if match else ""):
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            self.fields[key] = value

    def __repr__(self):
        return f"LogRecord({self.line!r})"


class ServerProcess:
    """One `evstream serve` child. Only this object's own PID is ever signalled."""

    def __init__(self, workdir, args=(), db=None, name="server"):
        self.workdir = workdir
        self.db = db or os.path.join(workdir, "x.db")
        self.args = list(args)
        self.stderr_path = os.path.join(workdir, f"{name}.stderr")
        self.proc = None
        self.url = None

    def start(self):
        cmd = [evstream_bin(), "serve", "--host", HOST, "--port", "0", "--db", self.db, *self.args]
        with open(self.stderr_path, "ab") as stderr:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=stderr, cwd=self.workdir, env=serve_env())
        self.url = self._read_url_line()
        return self

    def _read_url_line(self):
        deadline = time.monotonic() + STARTUP_TIMEOUT
        fd = self.proc.stdout.fileno()
        buf = b""
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise AssertionError(f"serve printed no URL within {STARTUP_TIMEOUT}s; "
                                     f"stderr: {self.stderr_path}")
            ready, _, _ = select.select([fd], [], [], min(left, 0.1))
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    self.proc.wait(timeout=5)
                    raise AssertionError(
                        f"serve exited ({self.proc.returncode}) before printing its URL; "
                        f"stderr: {self.log_text()!r}")
                buf += chunk
        url = buf.split(b"\n", 1)[0].decode()
        if not re.fullmatch(r"wss?://127\.0\.0\.1:\d+", url):
            self.kill()
            raise AssertionError(f"unexpected URL line from serve: {url!r}")
        return url

    @property
    def port(self):
        return int(self.url.rsplit(":", 1)[1])

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_records(self):
        return [LogRecord(line) for line in self.log_text().splitlines() if line]

    def find_log(self, msg, **fields):
        """Log records with this message whose fields contain the given values (as strings)."""
        return [r for r in self.log_records()
                if r.msg == msg and all(r.fields.get(k) == str(v) for k, v in fields.items())]

    async def wait_log(self, msg, timeout=RECV_TIMEOUT, **fields):
        return (await async_wait_for(lambda: self.find_log(msg, **fields), timeout,
                                     what=f"log line {msg!r} {fields}"))[0]

    def send_signal(self, sig):
        if self.running():
            self.proc.send_signal(sig)  # Popen.send_signal targets this child's PID only

    def kill(self):
        """kill -9 this server and reap it."""
        if self.running():
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(timeout=EXIT_TIMEOUT)

    async def wait_exit(self, timeout=EXIT_TIMEOUT):
        """Waits (without blocking the event loop) for the process to exit; its return code."""
        await async_wait_for(lambda: self.proc.poll() is not None, timeout, interval=0.02,
                             what=f"serve (pid {self.pid}) to exit")
        return self.proc.returncode

    async def stop(self):
        """SIGTERM, then SIGKILL if it does not exit in time. Returns the exit code."""
        if not self.running():
            return self.proc.returncode if self.proc else None
        self.send_signal(signal.SIGTERM)
        try:
            return await self.wait_exit()
        except AssertionError:
            self.kill()
            raise

    def close_stdout(self):
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()


def serve_env():
    """The environment of a test's server: serve runs one service thread per core by default, and
    the suite runs it with two (EVSTREAM_THREADS) on any machine, so every test crosses threads;
    EVSTREAM_THREADS=1 in the environment runs the suite on one."""
    env = dict(os.environ)
    env.setdefault("EVSTREAM_THREADS", "2")
    return env


def run_serve_once(args, timeout=10.0):
    """Runs `evstream serve ARGS` expecting it to fail at startup: (returncode, stdout, stderr)."""
    result = subprocess.run([evstream_bin(), "serve", *args], stdin=subprocess.DEVNULL,
                            capture_output=True, timeout=timeout)
    return result.returncode, result.stdout.decode(), result.stderr.decode()


# ---------------------------------------------------------------------------------------------
# Raw JSON text helpers (the server must keep data's digits and escapes byte-for-byte)

def strip_ws(text):
    """`text` (JSON) without insignificant whitespace; string contents are left untouched."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        else:
            if c not in " \t\r\n":
                out.append(c)
            i += 1
    return "".join(out)


def _skip_value(text, i):
    depth = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            if depth == 0:
                return i
            continue
        if c in "{[":
            depth += 1
        elif c in "}]":
            if depth == 0:
                return i
            depth -= 1
            if depth == 0:
                return i + 1
        elif c == "," and depth == 0:
            return i
        i += 1
    return i


def raw_member(object_text, key):
    """The raw text of top-level member `key` of a compact JSON object (None when absent)."""
    text = strip_ws(object_text)
    assert text.startswith("{"), text[:80]
    i = 1
    while i < len(text) and text[i] == '"':
        end = _skip_value(text, i)
        name = json.loads(text[i:end])
        start = end + 1  # past ':'
        end = _skip_value(text, start)
        if name == key:
            return text[start:end]
        i = end + 1
    return None


# ---------------------------------------------------------------------------------------------
# WebSocket clients

def connect(url, **kwargs):
    """websockets.connect with bounded handshakes and no client-side WS keepalive pings."""
    kwargs.setdefault("open_timeout", 5)
    kwargs.setdefault("close_timeout", 2)
    kwargs.setdefault("ping_interval", None)
    kwargs.setdefault("max_size", 2 ** 24)
    return websockets.connect(url, **kwargs)


class Message:
    """One server message: its raw text and the decoded object."""

    def __init__(self, raw):
        self.raw = raw
        self.obj = json.loads(raw)
        self.at = time.monotonic()

    @property
    def type(self):
        return self.obj.get("type")

    def __getitem__(self, key):
        return self.obj[key]

    def get(self, key, default=None):
        return self.obj.get(key, default)

    def __repr__(self):
        return f"Message({self.raw[:200]!r})"


class Subscriber:
    """A /ws/events client. With auto_pong it answers every ping with a pong and hides pings
    (recording them in .pings) from recv()."""

    def __init__(self, ws, auto_pong=True, pong_timestamp=True):
        self.ws = ws
        self.auto_pong = auto_pong
        self.pong_timestamp = pong_timestamp  # False: answer with a bare {"type":"pong"}
        self.first = None
        self.pings = []

    async def open(self, timeout=RECV_TIMEOUT):
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        self.first = Message(raw)
        return self

    @property
    def connection_id(self):
        return self.first["connection_id"]

    @property
    def last_id(self):
        return self.first["last_id"]

    async def recv(self, timeout=RECV_TIMEOUT):
        """The next non-ping message (with auto_pong), or the next message."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise asyncio.TimeoutError()
            raw = await asyncio.wait_for(self.ws.recv(), left)
            if isinstance(raw, bytes):
                raise AssertionError(f"server sent a binary frame: {raw[:80]!r}")
            message = Message(raw)
            if self.auto_pong and message.type == "ping":
                self.pings.append(message)
                pong = {"type": "pong"}
                if self.pong_timestamp:
                    pong["timestamp"] = message["timestamp"]
                await self.ws.send(json.dumps(pong))
                continue
            return message

    async def events(self, count, timeout=RECV_TIMEOUT):
        """The next `count` messages, all of which must be events."""
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < count:
            left = deadline - time.monotonic()
            try:
                message = await self.recv(max(left, 0.001))
            except asyncio.TimeoutError:
                raise AssertionError(f"got {len(out)} of {count} events within {timeout}s; "
                                     f"last ids {[m['id'] for m in out[-5:]]}")
            if message.type != "event":
                raise AssertionError(f"expected an event, got {message}")
            out.append(message)
        return out

    async def events_until(self, last_id, timeout=RECV_TIMEOUT):
        """Events up to and including id `last_id`."""
        out = []
        deadline = time.monotonic() + timeout
        while not out or out[-1]["id"] < last_id:
            left = deadline - time.monotonic()
            try:
                message = await self.recv(max(left, 0.001))
            except asyncio.TimeoutError:
                got = out[-1]["id"] if out else None
                raise AssertionError(f"no event {last_id} within {timeout}s (last: {got})")
            if message.type != "event":
                raise AssertionError(f"expected an event, got {message}")
            out.append(message)
        return out

    async def pump(self, until, timeout):
        """Receives (answering pings) until `until()` is true; the non-ping messages received.
        Raises AssertionError at the deadline."""
        got = []
        deadline = time.monotonic() + timeout
        while not until():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"condition not met within {timeout}s; got {got[-3:]}")
            try:
                # Short slices, so `until` is re-checked even while only pings arrive.
                got.append(await self.recv(min(left, 0.05)))
            except asyncio.TimeoutError:
                pass
        return got

    async def expect_silence(self, seconds):
        """Asserts no non-ping message arrives for `seconds` (pings are answered)."""
        try:
            message = await self.recv(seconds)
        except asyncio.TimeoutError:
            return
        raise AssertionError(f"expected nothing, got {message}")

    async def close(self):
        await self.ws.close()


class Publisher:
    """A /ws/publish client."""

    def __init__(self, ws):
        self.ws = ws

    async def recv(self, timeout=RECV_TIMEOUT):
        return Message(await asyncio.wait_for(self.ws.recv(), timeout))

    async def publish(self, frame, timeout=RECV_TIMEOUT):
        """Sends one frame (a dict, or raw text/bytes) and returns its one reply."""
        await self.ws.send(frame if isinstance(frame, (str, bytes)) else json.dumps(frame))
        return await self.recv(timeout)

    async def pipeline(self, frames, timeout=30.0, on_reply=None):
        """Sends every frame without waiting, reading replies concurrently; the replies in order.
        Fails if a frame gets no reply within `timeout` seconds overall."""
        replies = []

        async def reader():
            while len(replies) < len(frames):
                message = Message(await self.ws.recv())
                replies.append(message)
                if on_reply:
                    on_reply(message)

        async def writer():
            for frame in frames:
                await self.ws.send(frame if isinstance(frame, (str, bytes)) else json.dumps(frame))

        read_task = asyncio.ensure_future(reader())
        try:
            await asyncio.wait_for(asyncio.gather(writer(), asyncio.shield(read_task)), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"{len(replies)} replies to {len(frames)} frames within {timeout}s")
        finally:
            read_task.cancel()
        return replies

    async def close(self):
        await self.ws.close()


class RawSocket:
    """A WebSocket client done by hand over a plain socket: for clients that never read."""

    def __init__(self, port, path, rcvbuf=None, timeout=5.0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((HOST, port))
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                   f"Sec-WebSocket-Version: 13\r\n\r\n")
        self.sock.sendall(request.encode())
        self.response = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.response:
            if time.monotonic() > deadline:
                raise AssertionError("no HTTP response to the WebSocket upgrade")
            chunk = self.sock.recv(1)  # one byte at a time: read nothing past the headers
            if not chunk:
                break
            self.response += chunk
        status_line = self.response.split(b"\r\n", 1)[0].decode()
        self.status = int(status_line.split()[1]) if status_line else 0

    def read_frame(self):
        """Reads one unfragmented server frame: (opcode, payload)."""
        def exactly(n):
            data = b""
            while len(data) < n:
                chunk = self.sock.recv(n - len(data))
                if not chunk:
                    raise AssertionError("connection closed mid-frame")
                data += chunk
            return data
        head = exactly(2)
        length = head[1] & 0x7F
        if length == 126:
            length = int.from_bytes(exactly(2), "big")
        elif length == 127:
            length = int.from_bytes(exactly(8), "big")
        return head[0] & 0x0F, exactly(length)

    def peer_closed(self):
        """True once the server has closed or reset the connection (reads what is pending)."""
        try:
            self.sock.setblocking(False)
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
        except BlockingIOError:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True

    def peer_closed_within(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.peer_closed():
                return True
            time.sleep(0.01)
        return False

    def close(self):
        self.sock.close()


# ---------------------------------------------------------------------------------------------
# The test base class

class ServerTestCase(unittest.IsolatedAsyncioTestCase):
    """Gives each test a temp dir, `start_server()`, `subscribe()` / `publisher()` helpers, and
    teardown that closes the clients and stops the servers it started. The temp dir is removed
    when the test passes and kept (with the stderr paths printed) when it fails."""

    def run(self, result=None):
        result = result if result is not None else self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        self.tmpdir = tempfile.mkdtemp(prefix=f"evstream-it-{self._testMethodName}-")
        self.servers = []
        try:
            return super().run(result)
        finally:
            if len(result.failures) + len(result.errors) > before:
                print(f"\n[{self.id()}] kept {self.tmpdir}", file=sys.stderr)
                for server in self.servers:
                    print(f"  server stderr: {server.stderr_path}", file=sys.stderr)
            else:
                shutil.rmtree(self.tmpdir, ignore_errors=True)

    async def asyncSetUp(self):
        # IsolatedAsyncioTestCase runs the loop in debug mode, which slows a Python client that
        # reads tens of thousands of messages several times over.
        asyncio.get_running_loop().set_debug(False)
        self.clients = []
        self.raw_sockets = []
        self.addAsyncCleanup(self._cleanup)

    async def _cleanup(self):
        for ws in self.clients:
            try:
                await asyncio.wait_for(ws.close(), 3)
            except Exception:
                ws.transport.abort()
        for raw in self.raw_sockets:
            raw.close()
        for server in self.servers:
            try:
                await server.stop()
            finally:
                server.close_stdout()

    def start_server(self, *args, db=None, name=None):
        server = ServerProcess(self.tmpdir, args, db=db,
                               name=name or f"server{len(self.servers) + 1}")
        self.servers.append(server)
        return server.start()

    async def ws(self, url, **kwargs):
        ws = await connect(url, **kwargs)
        self.clients.append(ws)
        return ws

    async def subscribe(self, server, query="", auto_pong=True, pong_timestamp=True, **kwargs):
        url = f"{server.url}/ws/events" + (f"?{query}" if query else "")
        sub = Subscriber(await self.ws(url, **kwargs), auto_pong=auto_pong,
                         pong_timestamp=pong_timestamp)
        await sub.open()
        self.assertEqual(sub.first.type, "ping", sub.first)
        return sub

    async def publisher(self, server, **kwargs):
        kwargs.setdefault("max_queue", None)
        return Publisher(await self.ws(f"{server.url}/ws/publish", **kwargs))

    def raw_socket(self, server, path, **kwargs):
        raw = RawSocket(server.port, path, **kwargs)
        self.raw_sockets.append(raw)
        return raw

    async def publish_many(self, server, datas):
        """Publishes every data object (pipelined) and returns their ack ids."""
        pub = await self.publisher(server)
        replies = await pub.pipeline([{"type": "event", "data": d} for d in datas])
        for reply in replies:
            self.assertEqual(reply.type, "ack", reply)
        await pub.close()
        return [reply["id"] for reply in replies]

    def assertContiguous(self, ids, first, last):
        self.assertEqual(len(ids), len(set(ids)), "duplicate ids")
        self.assertEqual(ids, list(range(first, last + 1)),
                         f"ids not exactly {first}..{last}: first difference at "
                         f"{next((i for i, (a, b) in enumerate(zip(ids, range(first, last + 1))) if a != b), len(ids))}")


# ---------------------------------------------------------------------------------------------
# Client subcommands (publish, tail, loadtest, ...) as child processes

def free_port():
    """A loopback port that was free a moment ago: for a server that must come up on it later."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class FixedPortServer(ServerProcess):
    """A ServerProcess on a given port (e.g. a restart where clients are already pointed)."""

    def __init__(self, workdir, port, args=(), db=None, name="server"):
        super().__init__(workdir, args, db=db, name=name)
        self.fixed_port = port

    def start(self):
        cmd = [evstream_bin(), "serve", "--host", HOST, "--port", str(self.fixed_port),
               "--db", self.db, *self.args]
        with open(self.stderr_path, "ab") as stderr:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=stderr, cwd=self.workdir, env=serve_env())
        self.url = self._read_url_line()
        return self


def client_env(extra=None):
    """The environment for a client child: none of the user's EVSTREAM_* or NO_COLOR settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("EVSTREAM_") and k != "NO_COLOR"}
    env.update(extra or {})
    return env


class ChildProcess:
    """A child process whose stdout (when piped) is collected line by line by a reader thread into
    `.lines` and whose stderr goes to a file. `label` names it in timeout messages; with
    new_session it leads a process group of its own."""

    def __init__(self, workdir, name, argv, env, label, stdin=subprocess.DEVNULL,
                 stdout=subprocess.PIPE, cwd=None, new_session=False):
        import threading
        self.label = label
        self.new_session = new_session
        self.stderr_path = os.path.join(workdir, f"{name}.stderr")
        self.lines = []
        self.stdout_closed = stdout != subprocess.PIPE
        with open(self.stderr_path, "ab") as stderr:
            self.proc = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=stderr, cwd=cwd,
                                         env=env, start_new_session=new_session)
        if stdout == subprocess.PIPE:
            self._reader = threading.Thread(target=self._read_stdout, daemon=True)
            self._reader.start()

    def _read_stdout(self):
        for raw in iter(self.proc.stdout.readline, b""):
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
        self.proc.stdout.close()
        self.stdout_closed = True

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc.poll() is None

    def stderr_text(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    async def wait_exit(self, timeout=EXIT_TIMEOUT):
        """Waits (without blocking the event loop) for exit and for the end of stdout; the code."""
        await async_wait_for(lambda: self.proc.poll() is not None and self.stdout_closed, timeout,
                             interval=0.02, what=f"{self.label} (pid {self.pid}) to exit; "
                                                 f"stderr: {self.stderr_text()[-800:]!r}")
        return self.proc.returncode


class CliProcess(ChildProcess):
    """One `evstream SUBCOMMAND ...` child (see ChildProcess). Only its own PID is signalled."""

    def __init__(self, workdir, args, name="cli", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                 env=None):
        self.args = list(args)
        super().__init__(workdir, name, [evstream_bin(), *self.args], client_env(env),
                         label=self.args[0], stdin=stdin, stdout=stdout, cwd=workdir)

    def write(self, text):
        self.proc.stdin.write(text.encode() if isinstance(text, str) else text)
        self.proc.stdin.flush()

    def close_stdin(self):
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()

    async def wait_lines(self, count, timeout=RECV_TIMEOUT):
        """The first `count` stdout lines, once there are that many."""
        await async_wait_for(lambda: len(self.lines) >= count, timeout,
                             what=f"{count} stdout lines from {self.args[0]} (have "
                                  f"{len(self.lines)}; stderr: {self.stderr_text()[-500:]!r})")
        return self.lines[:count]

    async def wait_stderr(self, pattern, timeout=RECV_TIMEOUT):
        """The first match of regex `pattern` in stderr, once it appears."""
        return await async_wait_for(lambda: re.search(pattern, self.stderr_text()), timeout,
                                    what=f"{pattern!r} on the stderr of {self.args[0]}")

    def send_signal(self, sig):
        if self.running():
            self.proc.send_signal(sig)

    def kill(self):
        if self.running():
            self.proc.kill()
        self.proc.wait(timeout=EXIT_TIMEOUT)
        self.close_stdin()


def run_cli(workdir, args, input=None, timeout=30.0, env=None):
    """Runs `evstream ARGS` to completion (bounded): (returncode, stdout, stderr) as text."""
    result = subprocess.run([evstream_bin(), *args], input=input.encode() if isinstance(input, str)
                            else input, stdin=None if input is not None else subprocess.DEVNULL,
                            capture_output=True, timeout=timeout, cwd=workdir, env=client_env(env))
    return (result.returncode, result.stdout.decode("utf-8", "replace"),
            result.stderr.decode("utf-8", "replace"))


class ClientTestCase(ServerTestCase):
    """ServerTestCase plus client children (`spawn`, `cli`) that are killed at teardown, servers
    on a fixed port (`start_server_on`), and `stored()`: every stored record via since=0."""

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.children = []
        self.addAsyncCleanup(self._kill_children)  # runs before the servers are stopped

    async def _kill_children(self):
        for child in self.children:
            child.kill()

    def spawn(self, *args, name=None, **kwargs):
        child = CliProcess(self.tmpdir, args, name=name or f"{args[0]}{len(self.children) + 1}",
                           **kwargs)
        self.children.append(child)
        return child

    def cli(self, *args, input=None, timeout=30.0, env=None):
        return run_cli(self.tmpdir, args, input=input, timeout=timeout, env=env)

    def start_server_on(self, port, *args, db=None, name=None):
        server = FixedPortServer(self.tmpdir, port, args, db=db,
                                 name=name or f"server{len(self.servers) + 1}")
        self.servers.append(server)
        return server.start()

    async def stored(self, server, timeout=RECV_TIMEOUT):
        """Every stored event, as Messages in id order, read through a since=0 subscriber."""
        sub = await self.subscribe(server, "since=0")
        records = await sub.events_until(sub.last_id, timeout) if sub.last_id else []
        await sub.close()
        return records
