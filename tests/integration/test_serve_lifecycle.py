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

from evtest import (HOST, ServerTestCase, async_wait_for, raw_member, run_serve_once,
                    strip_ws)

TEXT_LOG_LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (debug|info|warn|error) \S")


def varied_data(n):
    """Event data that exercises digits, unicode and nesting, different for every n."""
    return ('{"seq":%d,"big":9%d123456789012345678901234567890,"f":%d.000000000000000000001,'
            '"s":"caf\u00e9 \U0001f600 #%d","nested":{"a":[%d,{"b":null}]}}' % (n, n, n, n, n))


async def drain(ws, into):
    """Appends every message until the connection closes (bounded)."""
    try:
        for _ in range(200_000):
            into.append(json.loads(await ws.recv()))
    except websockets.ConnectionClosed:
        pass


class GracefulStopTest(ServerTestCase):

    async def stop_during_burst(self, sig):
        """Starts a server with an idle subscriber, an idle publisher and a publisher sending as
        fast as it can; sends `sig` once 500 frames are acked. Returns what each client got."""
        server = self.start_server()
        self.server = server
        live = await self.subscribe(server)
        idle = await self.publisher(server)
        self.assertEqual((await idle.publish({"idle": True}))["id"], 1)
        busy = await self.publisher(server)
        got = {"live": [], "idle": [], "busy": []}
        sent = []

        async def keep_sending():
            try:
                for n in range(100_000):  # until the server closes the connection
                    await busy.ws.send(varied_data(n))
                    sent.append(n)
                    if n % 50 == 0:
                        await asyncio.sleep(0)
            except websockets.ConnectionClosed:
                pass

        tasks = [asyncio.ensure_future(drain(live.ws, got["live"])),
                 asyncio.ensure_future(drain(idle.ws, got["idle"])),
                 asyncio.ensure_future(drain(busy.ws, got["busy"])),
                 asyncio.ensure_future(keep_sending())]
        await async_wait_for(lambda: len(got["busy"]) >= 500, 10, what="500 acks")
        acked_before = len(got["busy"])
        server.send_signal(sig)
        # Once the server has taken the signal (its "shutting down" line; the signal reaches the
        # service loop through another thread, so an upgrade sent at once may still be served
        # first), a new connection is refused (503 while draining, or nothing listening).
        await server.wait_log("shutting down", timeout=10)
        with self.assertRaises((websockets.InvalidHandshake, OSError, asyncio.TimeoutError)):
            await self.ws(f"{server.url}/ws/events", open_timeout=3)
        self.assertEqual(await server.wait_exit(), 0, "serve must exit 0 after the signal")
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        self.assertGreaterEqual(len(got["busy"]), acked_before)
        self.assertLessEqual(len(got["busy"]), len(sent), "one reply per frame at most")
        return live, idle, busy, got

    async def check_stop(self, sig):
        live, idle, busy, got = await self.stop_during_burst(sig)
        server = self.server
        # Idle clients get every pending message, then 1001 "going away".
        for name, client in (("subscriber", live), ("publisher", idle)):
            self.assertEqual((client.ws.close_code, client.ws.close_reason), (1001, "going away"),
                             name)
        self.assertEqual(got["idle"], [])
        # The busy publisher's replies are in order: acks with consecutive ids, then only
        # "shutting down" errors for frames read after the stop.
        acks = [r for r in got["busy"] if r["type"] == "ack"]
        self.assertEqual(got["busy"][:len(acks)], acks, "no ack after an error")
        for error in got["busy"][len(acks):]:
            self.assertEqual(error["type"], "error", error)
            self.assertIn("shutting down", error["message"])
        acked_ids = [a["id"] for a in acks]
        self.assertEqual(acked_ids, list(range(2, len(acks) + 2)))
        # The subscriber saw every stored event, and the store holds every acked one.
        live_ids = [e["id"] for e in got["live"]]
        self.assertEqual([e["type"] for e in got["live"]], ["event"] * len(live_ids))
        self.assertContiguous(live_ids, 1, live_ids[-1])
        self.assertGreaterEqual(live_ids[-1], acked_ids[-1])
        self.assertTrue(server.find_log("shutting down"))
        self.assertEqual(server.find_log("stopped")[0].fields["events_total"], str(live_ids[-1]))

        # Restarted on the same file: the acked events (and any committed whose ack was still
        # in flight), with their data.
        again = self.start_server(db=server.db, name="restarted")
        sub = await self.subscribe(again, "since=0")
        self.assertEqual(sub.last_id, live_ids[-1])
        events = await sub.events(sub.last_id, timeout=20)
        self.assertEqual(events[0]["data"], {"idle": True})
        for event in events[1:]:
            expected = varied_data(event["id"] - 2)
            self.assertEqual(strip_ws(raw_member(event.raw, "data")), strip_ws(expected))

    async def test_sigterm_commits_what_was_accepted_and_closes_1001(self):
        await self.check_stop(signal.SIGTERM)

    async def test_sigint_commits_what_was_accepted_and_closes_1001(self):
        await self.check_stop(signal.SIGINT)

    async def test_publisher_still_sending_at_stop_gets_1001_and_its_acks(self):
        # A client that is still sending when the server closes must get the close frame too.
        # The server must not drop the TCP connection right after its close frame with unread
        # input pending: the kernel then sends a reset, and the client loses the 1001 and any
        # acks still in its receive buffer.
        live, idle, busy, got = await self.stop_during_burst(signal.SIGTERM)
        acks = [r for r in got["busy"] if r["type"] == "ack"]
        stored = [e["id"] for e in got["live"]]
        self.assertEqual((busy.ws.close_code, busy.ws.close_reason), (1001, "going away"))
        self.assertEqual(acks[-1]["id"], stored[-1], "events stored whose ack never arrived")


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
        startup = await server.wait_log("listening")
        self.assertEqual(len(server.find_log("listening")), 1)
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
