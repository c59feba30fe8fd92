"""GET /api/events/stream: subscribing without WebSocket, as SSE (text/event-stream, resumable by
Last-Event-ID) and NDJSON (one message per line, resumable by since=). Driven with real `curl -N`
children against the real binary on 127.0.0.1, next to WebSocket clients; the browser's
EventSource is in test_sse_e2e.py."""
import asyncio
import json
import signal
import socket

from evtest import (RECV_TIMEOUT, ChildProcess, ClientTestCase, async_wait_for, client_env,
                    free_port, require_tool, wait_for)
from test_http_api import NDJSON, http_request, ndjson

CURL = require_tool("curl")


class CurlStream(ChildProcess):
    """`curl -sN URL` with its stdout collected line by line (ChildProcess)."""

    def __init__(self, workdir, name, url, headers=()):
        argv = [CURL, "-sN", "--no-buffer", "-D", f"{workdir}/{name}.headers"]
        for header in headers:
            argv += ["-H", header]
        super().__init__(workdir, name, [*argv, url], client_env(), label=f"curl {url}")
        self.headers_path = f"{workdir}/{name}.headers"

    def messages(self):
        """NDJSON: every line parsed."""
        return [json.loads(line) for line in self.lines if line]

    def sse(self):
        """SSE: the messages as dicts of their fields (data parsed), comments as {"comment": x}."""
        out, fields = [], {}
        for line in self.lines:
            if line == "":
                if fields:
                    out.append(fields)
                fields = {}
            elif line.startswith(":"):
                out.append({"comment": line[1:].strip()})
            else:
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                fields[name] = json.loads(value) if name == "data" else value
        return out

    def sse_event_ids(self):
        return [int(m["id"]) for m in self.sse() if "id" in m]

    def event_ids(self):
        return [m["id"] for m in self.messages() if m.get("type") == "event"]

    def response_headers(self):
        with open(self.headers_path) as f:
            return f.read().lower()

    def kill(self):
        if self.running():
            self.proc.kill()
        self.proc.wait(timeout=10)


class HttpStreamTest(ClientTestCase):
    def http_url(self, server):
        return server.url.replace("ws://", "http://")

    def curl(self, server, query="", headers=()):
        url = f"{self.http_url(server)}/api/events/stream" + (f"?{query}" if query else "")
        child = CurlStream(self.tmpdir, f"curl{len(self.children) + 1}", url, headers)
        self.children.append(child)
        return child

    def post(self, server, datas, topic=None):
        body = ndjson([{"type": "event", "topic": topic, "data": d} if topic else d
                       for d in datas])
        status, _, text = http_request(server, "POST", "/api/events", body, NDJSON)
        self.assertEqual(status, 201, text)
        return json.loads(text)["ids"]

    async def wait_ids(self, stream, ids, sse=False, timeout=RECV_TIMEOUT):
        got = stream.sse_event_ids if sse else stream.event_ids
        await async_wait_for(lambda: len(got()) >= len(ids), timeout,
                             what=f"{len(ids)} events on {stream.label} (have {got()[-5:]})")
        self.assertEqual(got(), ids)

    def health(self, server):
        status, _, text = http_request(server, "GET", "/api/health")
        self.assertEqual(status, 200)
        return json.loads(text)

    async def test_ndjson_catch_up_then_live_in_order(self):
        server = self.start_server()
        self.post(server, [{"n": i} for i in range(1, 6)])
        stream = self.curl(server, "since=2")
        await self.wait_ids(stream, [3, 4, 5])
        hello = stream.messages()[0]
        self.assertEqual(hello["type"], "ping")
        self.assertEqual(hello["last_id"], 5)
        self.assertIn("connection_id", hello)
        self.post(server, [{"n": i} for i in range(6, 206)])
        await self.wait_ids(stream, list(range(3, 206)))
        record = [m for m in stream.messages() if m.get("id") == 7][0]
        self.assertEqual(record["data"], {"n": 7})
        self.assertEqual(record["topic"], "events")
        headers = stream.response_headers()
        self.assertIn("content-type: application/x-ndjson", headers)
        self.assertIn("cache-control: no-cache", headers)

    async def test_same_parameters_as_the_websocket(self):
        server = self.start_server()
        ids_a = self.post(server, [{"n": i} for i in range(1, 4)], topic="a")
        ids_b = self.post(server, [{"n": i} for i in range(1, 4)], topic="b")
        last = self.curl(server, "last=2")
        topic = self.curl(server, "topic=a")
        topic_last = self.curl(server, "topic=b&last=2")
        await self.wait_ids(last, ids_b[1:])
        await self.wait_ids(topic_last, ids_b[1:])
        await async_wait_for(lambda: len(topic.messages()) >= 1, RECV_TIMEOUT, what="greeting")
        more_a = self.post(server, [{"n": 9}], topic="a")
        more_b = self.post(server, [{"n": 9}], topic="b")
        await self.wait_ids(topic, more_a)
        await self.wait_ids(last, ids_b[1:] + more_a + more_b)
        await self.wait_ids(topic_last, ids_b[1:] + more_b)
        self.assertEqual(ids_a, [1, 2, 3])
        # since above the newest id: an error message, then live events (as on /ws/events).
        ahead = self.curl(server, "since=999")
        await async_wait_for(lambda: len(ahead.messages()) >= 2, RECV_TIMEOUT, what="error")
        self.assertEqual(ahead.messages()[1]["type"], "error")
        self.assertIn("above the newest stored id", ahead.messages()[1]["message"])

    async def test_sse_ids_and_resume_with_last_event_id(self):
        server = self.start_server()
        self.post(server, [{"n": i} for i in range(1, 11)])
        first = self.curl(server, "last=4", headers=["Accept: text/event-stream"])
        await self.wait_ids(first, [7, 8, 9, 10], sse=True)
        messages = first.sse()
        self.assertEqual(messages[0]["event"], "ping")
        self.assertEqual(messages[0]["retry"], "1000")
        self.assertEqual(messages[0]["data"]["last_id"], 10)
        event = messages[1]
        self.assertEqual(event["id"], "7")
        self.assertEqual(event["data"]["id"], 7)
        self.assertNotIn("event", event)  # plain messages: EventSource.onmessage gets them
        self.assertIn("content-type: text/event-stream", first.response_headers())
        first.kill()
        # What a browser does on reconnect: the same URL plus Last-Event-ID, which wins over last=.
        self.post(server, [{"n": i} for i in range(11, 16)])
        again = self.curl(server, "last=4&format=sse", headers=["Last-Event-ID: 8"])
        await self.wait_ids(again, list(range(9, 16)), sse=True)

    async def test_pings_and_subscriber_counts(self):
        server = self.start_server("--ping-interval", "200ms")
        sse = self.curl(server, "format=sse")
        nd = self.curl(server)
        await async_wait_for(lambda: sum("comment" in m for m in sse.sse()) >= 2, RECV_TIMEOUT,
                             what="two ': ping' comments")
        self.assertEqual([m["comment"] for m in sse.sse() if "comment" in m][:2], ["ping", "ping"])
        await async_wait_for(lambda: sum(m["type"] == "ping" for m in nd.messages()) >= 3,
                             RECV_TIMEOUT, what="NDJSON pings")
        # Streams never answer pings, and are not taken for dead ones.
        await asyncio.sleep(0)
        self.assertEqual(self.health(server)["subscribers"], 2)
        status, _, metrics = http_request(server, "GET", "/metrics")
        self.assertIn('evstream_connections{kind="subscriber"} 2', metrics)
        # A client that goes away is noticed (a write to it fails) and no longer counted.
        sse.kill()
        nd.kill()
        await async_wait_for(lambda: self.health(server)["subscribers"] == 0, 5,
                             what="the closed streams to be dropped")
        await server.wait_log("disconnect", path="/api/events/stream")

    async def test_bad_requests_and_auth(self):
        server = self.start_server("--read-token", "r3ad")
        for query, headers, status, words in [
                ("since=x&token=r3ad", {}, 400, "bad since=x"),
                ("last=1&since=2&token=r3ad", {}, 400, "either since= or last="),
                ("format=xml&token=r3ad", {}, 400, "bad format=xml: use sse or ndjson"),
                ("topic=a%20b&token=r3ad", {}, 400, "bad topic="),
                ("token=r3ad", {"Last-Event-ID": "x1"}, 400, "bad Last-Event-ID x1"),
                ("", {}, 401, "missing or wrong token"),
                ("token=wrong", {}, 401, "missing or wrong token")]:
            got, _, text = http_request(server, "GET", f"/api/events/stream?{query}",
                                        headers=headers)
            self.assertEqual(got, status, (query, text))
            self.assertIn(words, json.loads(text)["error"], query)
        got, _, text = http_request(server, "POST", "/api/events/stream?token=r3ad", "{}")
        self.assertEqual(got, 405, text)
        stream = self.curl(server, "token=r3ad")
        bearer = self.curl(server, headers=["Authorization: Bearer r3ad"])
        await async_wait_for(lambda: stream.messages() and bearer.messages(), RECV_TIMEOUT,
                             what="both greetings")
        self.assertEqual(self.health(server)["status"], "ok")

    async def test_slow_consumer_is_ended_and_others_keep_going(self):
        server = self.start_server("--client-queue", "512", "--client-queue-bytes", "256KiB")
        # A raw client that asks for the stream and never reads: its queue overflows once the
        # kernel's socket buffers are full.
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(raw.close)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.connect(("127.0.0.1", server.port))
        raw.sendall(b"GET /api/events/stream HTTP/1.1\r\nHost: x\r\n\r\n")
        healthy = self.curl(server)
        await async_wait_for(lambda: len(healthy.messages()) >= 1, RECV_TIMEOUT, what="greeting")
        ids = []
        for _ in range(500):  # bounded: 500 x 40 KB
            ids += self.post(server, [{"pad": "x" * 2000, "n": i} for i in range(20)])
            if server.find_log("slow consumer"):
                break
        self.assertTrue(server.find_log("slow consumer"), "the reader that never reads was kept")
        self.assertEqual(len(server.find_log("slow consumer")), 1)
        await self.wait_ids(healthy, ids, timeout=15)
        await async_wait_for(lambda: self.health(server)["subscribers"] == 1, 5,
                             what="the slow stream to be gone")
        # It resumes where it got to and loses nothing.
        resumed = self.curl(server, "since=0")
        await self.wait_ids(resumed, ids, timeout=15)

    async def test_shutdown_ends_streams_after_what_was_queued(self):
        server = self.start_server()
        nd = self.curl(server)
        sse = self.curl(server, "format=sse")
        await async_wait_for(lambda: nd.messages() and sse.sse(), RECV_TIMEOUT, what="greetings")
        ids = self.post(server, [{"n": i} for i in range(30)])
        server.send_signal(signal.SIGTERM)
        self.assertEqual(await server.wait_exit(), 0)
        await nd.wait_exit()
        await sse.wait_exit()
        self.assertEqual(nd.event_ids(), ids)
        self.assertEqual(sse.sse_event_ids(), ids)
        self.assertEqual(nd.messages()[-1]["type"], "error")
        self.assertIn("going away", nd.messages()[-1]["message"])
        self.assertIn("going away", sse.sse()[-1]["comment"])

    async def test_resume_across_a_restart_loses_nothing(self):
        port = free_port()
        db = f"{self.tmpdir}/restart.db"
        server = self.start_server_on(port, db=db)
        sse = self.curl(server, "format=sse")
        await async_wait_for(lambda: sse.sse(), RECV_TIMEOUT, what="greeting")
        first = self.post(server, [{"n": i} for i in range(10)])
        await self.wait_ids(sse, first, sse=True)
        server.kill()
        await sse.wait_exit()
        server = self.start_server_on(port, db=db)
        second = self.post(server, [{"n": i} for i in range(10, 20)])
        again = self.curl(server, "format=sse", headers=[f"Last-Event-ID: {first[-1]}"])
        await self.wait_ids(again, second, sse=True)
