"""serve as a process: graceful SIGTERM/SIGINT, durability across kill -9, its stderr log, and its
startup errors."""
import asyncio
import json
import os
import re
import signal
import socket
import unittest

import websockets

from evtest import (HOST, ServerProcess, ServerTestCase, async_wait_for, connect, raw_member,
                    run_serve_once, strip_ws)

TEXT_LOG_LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (debug|info|warn|error) \S")


def varied_data(n):
    """Event data that exercises digits, unicode and nesting, different for every n."""
    return ('{"seq":%d,"big":%d123456789012345678901234567890,"f":%d.000000000000000000001,'
            '"s":"caf\u00e9 \U0001f600 #%d","nested":{"a":[%d,{"b":null}]}}' % (n, n, n, n, n))


class GracefulStopTest(ServerTestCase):

    async def stop_with_signal(self, sig):
        server = self.start_server()
        live = await self.subscribe(server)
        pub = await self.publisher(server)
        replies, sent = [], []
        closed = asyncio.Event()

        async def read_replies():
            try:
                for _ in range(100_000):
                    replies.append(json.loads(await pub.ws.recv()))
            except websockets.ConnectionClosed:
                closed.set()

        async def keep_sending():
            try:
                for n in range(100_000):  # until the server closes the connection
                    await pub.ws.send(varied_data(n))
                    sent.append(n)
                    if n % 50 == 0:
                        await asyncio.sleep(0)
            except websockets.ConnectionClosed:
                pass

        live_events = []

        async def read_live():  # concurrently, so the server can drain to it while stopping
            try:
                for _ in range(100_000):
                    live_events.append(await live.recv(30))
            except websockets.ConnectionClosed:
                pass

        reader = asyncio.ensure_future(read_replies())
        live_reader = asyncio.ensure_future(read_live())
        writer = asyncio.ensure_future(keep_sending())
        await async_wait_for(lambda: len(replies) >= 500, 10, what="500 acks before the signal")
        acked_before = len(replies)
        server.send_signal(sig)
        # A new connection is refused now (503 while draining, or nothing listening).
        with self.assertRaises((websockets.InvalidHandshake, OSError, asyncio.TimeoutError)):
            await self.ws(f"{server.url}/ws/events", open_timeout=3)

        self.assertEqual(await server.wait_exit(), 0, "serve must exit 0 after the signal")
        await asyncio.wait_for(reader, 10)
        await asyncio.wait_for(writer, 10)
        self.assertTrue(closed.is_set())
        print("CLOSE", (pub.ws.close_code, pub.ws.close_reason), (live.ws.close_code, live.ws.close_reason), len(replies), len(sent))
        self.assertEqual((pub.ws.close_code, pub.ws.close_reason), (1001, "going away"))

        # Replies in order: acks with consecutive ids, then only "shutting down" errors.
        acks = [r for r in replies if r["type"] == "ack"]
        self.assertGreaterEqual(len(acks), acked_before)
        self.assertEqual(replies[:len(acks)], acks, "no ack after an error")
        for error in replies[len(acks):]:
            self.assertEqual(error["type"], "error", error)
            self.assertIn("shutting down", error["message"])
        acked_ids = [a["id"] for a in acks]
        self.assertEqual(acked_ids, list(range(1, len(acks) + 1)))
        self.assertLessEqual(len(replies), len(sent))

        # The live subscriber got every acked event, then 1001 "going away".
        await asyncio.wait_for(live_reader, 10)
        self.assertEqual([e.type for e in live_events], ["event"] * len(live_events))
        self.assertEqual([e["id"] for e in live_events], acked_ids)
        self.assertEqual((live.ws.close_code, live.ws.close_reason), (1001, "going away"))
        self.assertTrue(server.find_log("shutting down"))
        self.assertEqual(server.find_log("stopped")[0].fields["events_total"], str(len(acks)))

        # Restarted on the same file: exactly the acked events, with their data.
        again = self.start_server(db=server.db, name="restarted")
        sub = await self.subscribe(again, "since=0")
        self.assertEqual(sub.last_id, len(acks), "stored events must be exactly the acked ones")
        for n, event in enumerate(await sub.events(len(acks), timeout=20)):
            self.assertEqual(strip_ws(raw_member(event.raw, "data")), strip_ws(varied_data(n)))

    async def test_sigterm_commits_what_was_accepted_and_closes_1001(self):
        await self.stop_with_signal(signal.SIGTERM)

    async def test_sigint_commits_what_was_accepted_and_closes_1001(self):
        await self.stop_with_signal(signal.SIGINT)


class KillDurabilityTest(ServerTestCase):

    async def test_acked_events_survive_kill_9(self):
        server = self.start_server()
        count = 3000
        pub = await self.publisher(server)
        replies = await pub.pipeline([varied_data(n) for n in range(count)])
        self.assertEqual([r["id"] for r in replies], list(range(1, count + 1)))
        server.kill()  # SIGKILL right after the last ack: no chance to flush anything

        again = self.start_server(db=server.db, name="restarted")
        sub = await self.subscribe(again, "since=0")
        self.assertEqual(sub.last_id, count)
        events = await sub.events(count, timeout=20)
        self.assertContiguous([e["id"] for e in events], 1, count)
        for n, event in enumerate(events):
            self.assertEqual(strip_ws(raw_member(event.raw, "data")), strip_ws(varied_data(n)))
        # Ids are never reused after a crash.
        pub2 = await self.publisher(again)
        self.assertEqual((await pub2.publish({"after": "restart"}))["id"], count + 1)

    async def test_subscribers_only_ever_see_stored_events(self):
        # Kill -9 the server mid-stream: everything a subscriber was sent (and everything acked)
        # must be in the store after a restart.
        server = self.start_server()
        live = await self.subscribe(server)
        pub = await self.publisher(server)
        seen, acked = [], []

        async def collect(ws, into, key):
            try:
                for _ in range(100_000):
                    message = json.loads(await ws.recv())
                    if message["type"] == key:
                        into.append(message["id"])
            except websockets.ConnectionClosed:
                pass

        async def keep_sending():
            try:
                for n in range(50_000):
                    await pub.ws.send(varied_data(n))
                    if n % 50 == 0:
                        await asyncio.sleep(0)
            except websockets.ConnectionClosed:
                pass

        tasks = [asyncio.ensure_future(collect(live.ws, seen, "event")),
                 asyncio.ensure_future(collect(pub.ws, acked, "ack")),
                 asyncio.ensure_future(keep_sending())]
        await async_wait_for(lambda: len(seen) >= 2000, 20, what="2000 live events")
        server.kill()
        # Drain what the dead server had already sent; the connections then drop.
        await asyncio.wait_for(asyncio.gather(*tasks), 15)
        self.assertTrue(seen and acked)

        again = self.start_server(db=server.db, name="restarted")
        sub = await self.subscribe(again, "since=0")
        stored = [e["id"] for e in await sub.events(sub.last_id, timeout=30)]
        self.assertContiguous(stored, 1, sub.last_id)
        self.assertEqual(sorted(seen), seen, "live events in id order")
        self.assertLessEqual(seen[-1], stored[-1], "a subscriber saw an event that was not stored")
        self.assertLessEqual(acked[-1], stored[-1], "an acked event was lost")


class LogTest(ServerTestCase):

    async def test_startup_connect_and_disconnect_lines(self):
        server = self.start_server()
        (startup,) = server.find_log("listening")
        self.assertEqual(startup.fields["url"], server.url)
        self.assertEqual(startup.fields["db"], server.db)

        sub = await self.subscribe(server)
        pub = await self.publisher(server)
        pub_id = (await server.wait_log("connect", path="/ws/publish")).fields["id"]
        connect_line = await server.wait_log("connect", id=sub.connection_id)
        self.assertEqual(connect_line.fields["peer"], HOST)
        self.assertEqual(connect_line.fields["path"], "/ws/events")

        await sub.ws.close(1000)
        gone = await server.wait_log("disconnect", id=sub.connection_id)
        self.assertEqual(gone.fields["peer"], HOST)
        self.assertEqual(gone.fields["path"], "/ws/events")
        self.assertEqual(gone.fields["reason"], "client closed (1000)")

        pub.ws.transport.abort()  # vanishes without a close frame
        lost = await server.wait_log("disconnect", id=pub_id)
        self.assertEqual(lost.fields["path"], "/ws/publish")
        self.assertTrue(lost.fields["reason"], lost)

        for line in server.log_text().splitlines():
            self.assertRegex(line, TEXT_LOG_LINE)

    async def test_json_log_format(self):
        server = self.start_server("--log-format", "json")
        sub = await self.subscribe(server)
        await sub.ws.close(1000)

        def records():
            return [json.loads(line) for line in server.log_text().splitlines()]

        await async_wait_for(lambda: any(r["msg"] == "disconnect" for r in records()), 5,
                             what="a JSON disconnect record")
        by_msg = {r["msg"]: r for r in records()}
        self.assertEqual(by_msg["listening"]["url"], server.url)
        self.assertEqual(by_msg["listening"]["db"], server.db)
        for msg in ("connect", "disconnect"):
            record = by_msg[msg]
            self.assertEqual(str(record["id"]), sub.connection_id)
            self.assertEqual(record["peer"], HOST)
            self.assertEqual(record["path"], "/ws/events")
            self.assertEqual({"time", "level"} <= set(record), True)
        self.assertEqual(by_msg["disconnect"]["reason"], "client closed (1000)")


class StartupErrorTest(unittest.TestCase):

    def assertOneErrorLine(self, code, out, err):
        self.assertNotEqual(code, 0)
        self.assertEqual(out, "", "nothing on stdout when serve cannot start")
        lines = err.splitlines()
        self.assertEqual(len(lines), 1, f"expected one line on stderr, got: {err!r}")
        self.assertTrue(lines[0].startswith("evstream: error: "), lines[0])
        return lines[0]

    def test_port_in_use(self):
        with socket.socket() as busy:
            busy.bind((HOST, 0))
            busy.listen()
            port = busy.getsockname()[1]
            code, out, err = run_serve_once(["--host", HOST, "--port", str(port),
                                             "--db", ":memory:"])
        line = self.assertOneErrorLine(code, out, err)
        self.assertIn(str(port), line)
        self.assertIn("in use", line)

    def test_unopenable_db(self):
        path = "/nonexistent/dir/x.db"
        self.assertFalse(os.path.exists(os.path.dirname(path)))
        code, out, err = run_serve_once(["--host", HOST, "--port", "0", "--db", path])
        line = self.assertOneErrorLine(code, out, err)
        self.assertIn(path, line)


if __name__ == "__main__":
    unittest.main()
