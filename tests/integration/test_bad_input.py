"""Bad input and abuse, as one table (README "Bad input"): every class of bad input gets the exact
reply the contract gives it, while 100 healthy subscribers (answering pings) and a steady publisher
run on the same server and lose nothing.

One server: a publish token, a read token, --max-message-bytes 4096, --max-clients 110 (the 100
healthy subscribers and the steady publisher, plus room for one case's clients). CASES is the
table: (name, how it is sent, the exact reply). After each case every healthy subscriber must hold
exactly the ids 1..N in order, N the newest acked id (so nothing was lost, reordered or duplicated,
and nothing unacked, i.e. none of the bad input, was stored), and the server still answers with
exactly the healthy connections open. HTTP-level abuse goes over raw asyncio streams.
"""
import asyncio
import base64
import json
import os
import sys
import time
import unittest

import websockets

from evtest import HOST, ServerTestCase, Subscriber, async_wait_for, connect

PUBLISH = "bad-input-publish-token"
READ = "bad-input-read-token"
MAX_BYTES = 4096
HEALTHY = 100
MAX_CLIENTS = HEALTHY + 10  # the healthy subscribers, the steady publisher, and room for a case
PING_INTERVAL_S = 5  # healthy subscribers answer these; silent ones are dropped after 10 s
HEADER_TIMEOUT_S = 10  # serve drops a connection whose request headers are not complete by then
REPLY_TIMEOUT = 5.0  # bound on any one reply


# ---------------------------------------------------------------------------------------------
# Replies, as the table states them and as the cases observe them (compared with ==)

class Prefix(str):
    """A message of which only the start is fixed (the rest names a parser position), and which
    contains each of `parts`."""

    def __new__(cls, start, *parts):
        self = super().__new__(cls, start)
        self.parts = parts
        return self

    def __eq__(self, other):
        return (isinstance(other, str) and other.startswith(str(self))
                and all(part in other for part in self.parts))

    def __ne__(self, other):
        return not self == other

    __hash__ = str.__hash__

    def __repr__(self):
        return f"Prefix({str(self)!r}, containing {self.parts!r})" if self.parts else \
            f"Prefix({str(self)!r})"


def ws_error(message):
    """An {"type":"error"} reply; the connection stays open (a repeat gets the same reply)."""
    return ("ws", ({"type": "error", "message": message},), "stays open")


def ws_close(code, reason, *errors):
    """The `errors` replies, then a close frame with this code and reason."""
    return ("ws", tuple({"type": "error", "message": e} for e in errors), ("close", code, reason))


def http(status, error, connection):
    """An HTTP response `status` with body {"error": error}; `connection` is "kept" (keep-alive
    serves the next request) or "closed" (the server closes it after the reply)."""
    return ("http", status, {"error": error}, connection)


DROPPED = ("dropped without a reply",)
UNAUTHORIZED = "missing or wrong token: send Authorization: Bearer TOKEN or ?token=TOKEN"
TOPIC_CHARS = "use 1-128 characters of A-Z a-z 0-9 . _ -"
PONG_HINT = 'subscribers may only send {"type":"pong","timestamp":"..."}'


class RawText(bytes):
    """Bytes sent as a text frame as they are (the client library would refuse invalid UTF-8)."""


# ---------------------------------------------------------------------------------------------
# Raw HTTP over asyncio streams

def upgrade_request(path, headers=()):
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1", f"Host: {HOST}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def request(method, target, headers=(), body=b""):
    body = body.encode() if isinstance(body, str) else body
    lines = [f"{method} {target} HTTP/1.1", f"Host: {HOST}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def post(body, headers=(f"Authorization: Bearer {PUBLISH}",), length=True):
    body = body.encode() if isinstance(body, str) else body
    extra = [f"Content-Length: {len(body)}"] if length else []
    return request("POST", "/api/events", [*headers, *extra], body)


async def read_response(reader):
    """(status, headers, body bytes) of one response; None when the connection ends first."""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REPLY_TIMEOUT)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", 0))),
                                  REPLY_TIMEOUT)
    return status, headers, body


async def http_exchange(port, data):
    """Sends `data` on a fresh connection: the observed reply (see http() and DROPPED). "kept"
    means a second request on the same connection was answered."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        try:
            writer.write(data)
            await writer.drain()
        except ConnectionError:
            pass  # the server may close before it has read everything; its reply is still read
        response = await read_response(reader)
        if response is None:
            return DROPPED
        status, _, body = response
        try:
            writer.write(request("GET", "/api/health"))
            await writer.drain()
            follow = await read_response(reader)
        except ConnectionError:
            follow = None
        return ("http", status, json.loads(body), "kept" if follow else "closed")
    finally:
        writer.close()


# ---------------------------------------------------------------------------------------------
# The table: (name, how it is sent, the exact reply)

def pub_frame(frame):
    return ("ws", "/ws/publish", frame)


def sub_frame(frame):
    return ("ws", "/ws/events", frame)


def sub_query(query):
    return ("ws", f"/ws/events?token={READ}&{query}", None)


def raw(data):
    return ("http", data)


BIG_TEXT = '{"pad":"' + "x" * MAX_BYTES + '"}'
MANY_HEADERS = [f"X-Flood-{n}: {'v' * 20}" for n in range(200)]  # ~6 KB of headers

CASES = [
    # WebSocket frames on /ws/publish: an error reply, nothing stored, the connection stays open.
    ("publish: invalid JSON", pub_frame('{"camera_id":'), ws_error(Prefix("invalid JSON: "))),
    ("publish: not an object", pub_frame("[1,2,3]"),
     ws_error("an event must be a JSON object, not an array")),
    ("publish: binary frame", pub_frame(b'{"camera_id":"cam-1"}'),
     ws_error("binary frames are not supported; send JSON as text frames")),
    ("publish: invalid UTF-8", pub_frame(RawText(b'{"camera_id":"cam-\xff\xfe"}')),
     ws_error(Prefix("invalid JSON: ", "ill-formed UTF-8"))),
    ("publish: bad topic", pub_frame('{"type":"event","topic":"a/b","data":{}}'),
     ws_error("topic contains an invalid character; " + TOPIC_CHARS)),
    ("publish: oversize frame", pub_frame(BIG_TEXT),
     ws_close(1009, f"message larger than {MAX_BYTES} bytes")),
    # Messages from subscribers: only pongs are expected.
    ("subscribe: not a pong", sub_frame('{"type":"hello"}'),
     ws_error('unknown message type "hello"; ' + PONG_HINT)),
    ("subscribe: invalid JSON", sub_frame("pong"), ws_error(Prefix("invalid JSON: ", PONG_HINT))),
    ("subscribe: binary frame", sub_frame(b"\x00\x01"),
     ws_error("binary frames are not supported; send JSON as text frames")),
    ("subscribe: invalid UTF-8", sub_frame(RawText(b'{"type":"\xc3\x28"}')),
     ws_error(Prefix("invalid JSON: ", "ill-formed UTF-8", PONG_HINT))),
    ("subscribe: oversize frame", sub_frame(BIG_TEXT),
     ws_close(1009, f"message larger than {MAX_BYTES} bytes")),
    # Bad query parameters: the greeting, an error naming the parameter, then 1008.
    ("subscribe: bad since=", sub_query("since=abc"),
     ws_close(1008, "bad request", "bad since=abc: expected an event id (0 or more)")),
    ("subscribe: bad topic=", sub_query("topic=a%2Fb"),
     ws_close(1008, "bad request", "bad topic=: topic contains an invalid character; " +
              TOPIC_CHARS)),
    ("subscribe: since= and last=", sub_query("since=1&last=1"),
     ws_close(1008, "bad request", "use either since= or last=, not both")),
    ("GET /api/events: bad limit=",
     raw(request("GET", "/api/events?limit=abc", [f"Authorization: Bearer {READ}"])),
     http(400, "bad limit=abc: expected a whole number from 1 to 1000", "kept")),
    ("GET /api/events: unknown parameter",
     raw(request("GET", "/api/events?bogus=1", [f"Authorization: Bearer {READ}"])),
     http(400, 'unknown parameter "bogus": use after, before, since, until, topic, where, limit, order',
          "kept")),
    ("upgrade: unknown path", raw(upgrade_request("/ws/nope")),
     http(404, "unknown WebSocket path: use /ws/events or /ws/publish", "closed")),
    # Bad bodies.
    ("POST: invalid JSON", raw(post('{"camera_id":')), http(400, Prefix("invalid JSON: "), "kept")),
    ("POST: not an object", raw(post("[1]")),
     http(400, "an event must be a JSON object, not an array", "kept")),
    ("POST: NDJSON bad line",
     raw(post('{"a":1}\n[2]\n', (f"Authorization: Bearer {PUBLISH}",
                                 "Content-Type: application/x-ndjson"))),
     http(400, "line 2: an event must be a JSON object, not an array", "kept")),
    ("POST: oversize body", raw(post(BIG_TEXT)),
     http(413, f"body larger than {MAX_BYTES} bytes (--max-message-bytes; NDJSON bodies may be "
               f"16 times that)", "kept")),
    # Tokens: 401 for HTTP requests and WebSocket upgrades alike.
    ("POST: no token", raw(post('{"a":1}', headers=())), http(401, UNAUTHORIZED, "kept")),
    ("POST: read token", raw(post('{"a":1}', headers=(f"Authorization: Bearer {READ}",))),
     http(401, UNAUTHORIZED, "kept")),
    ("GET /api/events: wrong token", raw(request("GET", "/api/events?token=wrong")),
     http(401, UNAUTHORIZED, "kept")),
    ("GET /metrics: Basic auth",
     raw(request("GET", "/metrics", [f"Authorization: Basic {base64.b64encode(b'u:p').decode()}"])),
     http(401, UNAUTHORIZED, "kept")),
    ("upgrade /ws/publish: no token", raw(upgrade_request("/ws/publish")),
     http(401, UNAUTHORIZED, "closed")),
    ("upgrade /ws/publish: read token", raw(upgrade_request(f"/ws/publish?token={READ}")),
     http(401, UNAUTHORIZED, "closed")),
    ("upgrade /ws/events: wrong token",
     raw(upgrade_request("/ws/events", ["Authorization: Bearer wrong"])),
     http(401, UNAUTHORIZED, "closed")),
    # Header floods: past lws' 4 KiB header buffer the connection is closed with no reply (lws 4.1
    # sends no 431 and offers no hook to send one).
    ("header flood: 200 headers", raw(request("GET", "/api/health", MANY_HEADERS)), DROPPED),
    ("header flood: one 8 KB header",
     raw(request("GET", "/api/health", [f"X-Big: {'a' * 8192}"])), DROPPED),
    ("header flood: 8 KB query", raw(request("GET", "/api/events?topic=" + "t" * 8192)), DROPPED),
    ("header flood: upgrade", raw(upgrade_request("/ws/events", MANY_HEADERS)), DROPPED),
    # Request smuggling shapes: refused, and the connection is closed (its framing is unknowable).
    ("smuggling: Content-Length twice",
     raw(post('{"a":1}', (f"Authorization: Bearer {PUBLISH}", "Content-Length: 7"))),
     http(400, "Content-Length must be one decimal number, given once", "closed")),
    ("smuggling: two different Content-Lengths",
     raw(request("POST", "/api/events", [f"Authorization: Bearer {PUBLISH}", "Content-Length: 7",
                                         "Content-Length: 40"], '{"a":1}' + "x" * 33)),
     http(400, "Content-Length must be one decimal number, given once", "closed")),
    ("smuggling: Content-Length not a number",
     raw(request("POST", "/api/events", [f"Authorization: Bearer {PUBLISH}",
                                         "Content-Length: 0x07"], '{"a":1}')),
     http(400, "Content-Length must be one decimal number, given once", "closed")),
    ("smuggling: chunked and Content-Length",
     raw(request("POST", "/api/events", [f"Authorization: Bearer {PUBLISH}",
                                         "Transfer-Encoding: chunked", "Content-Length: 7"],
                 '7\r\n{"a":1}\r\n0\r\n\r\nGET /api/health HTTP/1.1\r\nHost: x\r\n\r\n')),
     http(400, "Transfer-Encoding and Content-Length together are ambiguous: send the body with "
               "one Content-Length", "closed")),
    ("smuggling: chunked",
     raw(request("POST", "/api/events", [f"Authorization: Bearer {PUBLISH}",
                                         "Transfer-Encoding: chunked"],
                 '7\r\n{"a":1}\r\n0\r\n\r\n')),
     http(411, "Transfer-Encoding is not supported: send the body with a Content-Length",
          "closed")),
    ("POST without Content-Length", raw(post('{"a":1}', length=False)),
     http(411, "a POST needs a Content-Length", "closed")),
    # Connections that never finish their request (silent, half an upgrade, a byte at a time, a
    # body that stops halfway) are dropped unanswered within HEADER_TIMEOUT_S (a stalled body after
    # 5 s without data), and nobody else waits for them meanwhile.
    ("slowloris: 20 unfinished requests", ("slowloris", 20),
     (DROPPED[0], f"within {HEADER_TIMEOUT_S} s", "others served meanwhile")),
    # Past --max-clients: upgrades get 503 while the connected clients keep working.
    ("flood past --max-clients", ("flood",),
     http(503, "too many clients (--max-clients reached)", "closed")),
]


# ---------------------------------------------------------------------------------------------

class Healthy:
    """One healthy subscriber: records every event id, answers pings (Subscriber.recv)."""

    def __init__(self, sub):
        self.sub = sub
        self.ids = []
        self.problem = None

    async def run(self):
        try:
            while True:
                message = await self.sub.recv(timeout=3600)
                if message.type == "event":
                    self.ids.append(message["id"])
                else:
                    self.problem = f"unexpected message {message}"
        except websockets.ConnectionClosed as closed:
            self.problem = f"connection closed: {closed}"


class BadInputTest(ServerTestCase):

    async def test_every_bad_input_gets_its_reply_while_healthy_clients_lose_nothing(self):
        self.server = self.start_server(
            "--token", PUBLISH, "--read-token", READ, "--max-message-bytes", str(MAX_BYTES),
            "--max-clients", str(MAX_CLIENTS), "--ping-interval", f"{PING_INTERVAL_S}s")
        self.healthy = []
        for _ in range(HEALTHY // 20):  # 20 handshakes at a time
            subs = await asyncio.gather(*(self.subscribe(self.server, f"token={READ}")
                                          for _ in range(20)))
            self.healthy += [Healthy(sub) for sub in subs]
        self.acked = []
        self.publishing = True
        self.publisher_problem = None
        self.pub = await self.publisher(self.server,
                                        extra_headers={"Authorization": f"Bearer {PUBLISH}"})
        tasks = [asyncio.ensure_future(h.run()) for h in self.healthy]
        tasks.append(asyncio.ensure_future(self.steady_publisher()))
        self.addAsyncCleanup(self.stop_tasks, tasks)
        await self.expect_connections(HEALTHY, 1)

        started = time.monotonic()
        for name, how, expected in CASES:
            with self.subTest(name):
                before = len(self.acked)
                case_started = time.monotonic()
                observed = await self.send_case(how)
                self.assertEqual(observed, expected, name)
                # The steady publisher went on while the case ran; then nobody lost anything.
                await async_wait_for(lambda: len(self.acked) >= before + 3, REPLY_TIMEOUT,
                                     what=f"3 more acks after {name}")
                await self.expect_no_loss(name)
                await self.expect_connections(HEALTHY, 1)
                print(f"{name}: {observed!r} in {time.monotonic() - case_started:.2f}s, "
                      f"{len(self.acked) - before} events meanwhile", file=sys.stderr)
        self.publishing = False
        await async_wait_for(lambda: tasks[-1].done(), REPLY_TIMEOUT, what="the publisher to stop")
        await self.expect_no_loss("the end")
        self.assertTrue(self.server.running())
        self.assertTrue(all(h.sub.pings for h in self.healthy), "every healthy one answered pings")
        print(f"{len(CASES)} cases, {len(self.acked)} events to {HEALTHY} subscribers in "
              f"{time.monotonic() - started:.1f}s", file=sys.stderr)

    # -- the healthy load ----------------------------------------------------------------------

    async def steady_publisher(self):
        n = 0
        try:
            while self.publishing:
                reply = await self.pub.publish({"steady": n})
                if reply.type != "ack":
                    self.publisher_problem = f"publish {n} got {reply}"
                    return
                self.acked.append(reply["id"])
                n += 1
                await asyncio.sleep(0.02)  # pacing: about 50 events/s to each subscriber
        except websockets.ConnectionClosed as closed:
            self.publisher_problem = f"publisher connection closed: {closed}"

    async def stop_tasks(self, tasks):
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def expect_no_loss(self, after):
        """Every healthy subscriber holds exactly ids 1..N (N the newest ack), in order."""
        self.assertIsNone(self.publisher_problem, after)
        newest = self.acked[-1]
        self.assertEqual(sorted(self.acked), list(range(1, newest + 1)),
                         f"after {after}: stored ids other than the steady publisher's")
        await async_wait_for(
            lambda: all(len(h.ids) >= newest or h.problem for h in self.healthy), 10,
            what=f"every healthy subscriber to have event {newest} after {after}")
        for n, h in enumerate(self.healthy):
            self.assertIsNone(h.problem, f"healthy subscriber {n} after {after}")
            self.assertEqual(h.ids[:newest], list(range(1, newest + 1)),
                             f"healthy subscriber {n} after {after}: a gap, a duplicate or "
                             f"disorder")

    async def health(self):
        reader, writer = await asyncio.open_connection(HOST, self.server.port)
        try:
            writer.write(request("GET", "/api/health", [f"Authorization: Bearer {READ}"]))
            status, _, body = await read_response(reader)
            self.assertEqual(status, 200)
            return json.loads(body)
        finally:
            writer.close()

    async def expect_connections(self, subscribers, publishers):
        """Once the server has let go of a case's connections, exactly the healthy ones remain."""
        want = {"subscribers": subscribers, "publishers": publishers}
        seen = {}

        async def check():
            health = await self.health()
            seen.update({k: health[k] for k in want})
            return seen == want

        deadline = time.monotonic() + REPLY_TIMEOUT
        while not await check():
            if time.monotonic() > deadline:
                self.fail(f"connections {seen}, expected {want}")
            await asyncio.sleep(0.05)

    # -- sending a case ------------------------------------------------------------------------

    async def send_case(self, how):
        kind = how[0]
        if kind == "ws":
            return await self.ws_case(how[1], how[2])
        if kind == "http":
            return await http_exchange(self.server.port, how[1])
        if kind == "slowloris":
            return await self.slowloris(how[1])
        return await self.flood()

    async def ws_case(self, path, frame):
        token = PUBLISH if path.startswith("/ws/publish") else READ
        ws = await self.ws(f"{self.server.url}{path}",
                           extra_headers={"Authorization": f"Bearer {token}"})
        if path.startswith("/ws/events"):
            greeting = await self.next_reply(ws)
            self.assertEqual(greeting.get("type"), "ping", greeting)
        replies = []
        try:
            if frame is None:  # the request itself is the bad input: read until the close
                while True:
                    replies.append(await self.next_reply(ws))
            await self.send_frame(ws, frame)
            replies.append(await self.next_reply(ws))
            await self.send_frame(ws, frame)  # again: the connection is still open
            again = await self.next_reply(ws)
            state = "stays open" if again == replies[0] else f"then {again}"
        except websockets.ConnectionClosed:
            state = ("close", ws.close_code, ws.close_reason)
        except asyncio.TimeoutError:
            state = "no reply"
        await ws.close()
        return ("ws", tuple(replies), state)

    @staticmethod
    async def send_frame(ws, frame):
        if isinstance(frame, RawText):
            await ws.write_frame(True, 0x1, bytes(frame))
        else:
            await ws.send(frame)

    @staticmethod
    async def next_reply(ws):
        """The next message that is not a ping or a live event (a case's subscriber gets both)."""
        deadline = time.monotonic() + REPLY_TIMEOUT
        while True:
            raw = await asyncio.wait_for(ws.recv(), max(deadline - time.monotonic(), 0.001))
            message = json.loads(raw) if isinstance(raw, str) else {"binary": raw.hex()}
            if message.get("type") == "ping" and "connection_id" not in message:
                continue
            if message.get("type") == "event":
                continue
            return message

    async def slowloris(self, count):
        """`count` connections that never finish their request: a quarter send nothing, a quarter
        half an upgrade, a quarter trickle one a byte every half second, and a quarter send half of
        a POST body."""
        stalled = [b"", upgrade_request("/ws/events")[:60], None,
                   post('{"pad":"' + "x" * 100 + '"}')[:-50]]
        streams = [await asyncio.open_connection(HOST, self.server.port) for _ in range(count)]
        opened = time.monotonic()
        for n, (_, writer) in enumerate(streams):
            if stalled[n % 4]:
                writer.write(stalled[n % 4])

        async def trickle(writer):
            for byte in upgrade_request("/ws/events")[:-4]:  # never the final blank line
                if writer.is_closing() or writer.transport.get_write_buffer_size():
                    return
                try:
                    writer.write(bytes([byte]))
                except ConnectionError:
                    return
                await asyncio.sleep(0.5)  # pacing of the trickle, not a wait for the server

        tricklers = [asyncio.ensure_future(trickle(w)) for n, (_, w) in enumerate(streams)
                     if stalled[n % 4] is None]
        try:
            # Meanwhile others are served: a new subscriber gets live events, HTTP answers (and
            # the steady publisher and the healthy subscribers carry on, checked after the case).
            sub = Subscriber(await connect(f"{self.server.url}/ws/events?token={READ}"))
            await sub.open()
            await sub.events(1)
            await sub.ws.close()
            served = (await self.health())["status"] == "ok"

            async def dropped(reader):
                try:
                    data = await reader.read(65536)
                    return data == b""
                except ConnectionError:
                    return True

            results = await asyncio.wait_for(
                asyncio.gather(*(dropped(r) for r, _ in streams)), HEADER_TIMEOUT_S + 5)
            took = time.monotonic() - opened
        finally:
            for task in tricklers:
                task.cancel()
            for _, writer in streams:
                writer.close()
        self.assertTrue(all(results), "a stalled connection got a reply instead of a close")
        within = (f"within {HEADER_TIMEOUT_S} s" if took <= HEADER_TIMEOUT_S + 3
                  else f"after {took:.1f} s")
        return (DROPPED[0], within, "others served meanwhile" if served else "others starved")

    async def flood(self):
        """Fills every free slot, then tries more upgrades: each gets 503. The fillers then leave."""
        health = await self.health()
        free = MAX_CLIENTS - health["subscribers"] - health["publishers"]
        fillers = [await self.ws(f"{self.server.url}/ws/events?token={READ}") for _ in range(free)]
        try:
            replies = [await http_exchange(self.server.port,
                                           upgrade_request(f"/ws/events?token={READ}"))
                       for _ in range(5)]
            self.assertEqual(len(set(map(repr, replies))), 1, replies)
            # The connected clients still work: a filler greets, the steady publisher goes on.
            greeting = json.loads(await asyncio.wait_for(fillers[-1].recv(), REPLY_TIMEOUT))
            self.assertEqual(greeting["type"], "ping")
        finally:
            await asyncio.gather(*(ws.close() for ws in fillers))
        return replies[0]


if __name__ == "__main__":
    unittest.main()
