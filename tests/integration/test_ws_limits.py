"""Fan-out to many subscribers and the limits that protect them: slow consumers (--client-queue),
oversized frames (--max-message-bytes), --max-clients, and unknown WebSocket paths."""
import asyncio
import json
import socket
import time
import unittest

import websockets

from evtest import HOST, ServerTestCase, async_wait_for


class FanOutTest(ServerTestCase):

    async def test_every_subscriber_gets_every_event_in_id_order(self):
        server = self.start_server()
        subs = [await self.subscribe(server) for _ in range(6)]
        count = 2000
        ids = await self.publish_many(server, [{"n": n, "topic_hint": n % 4} for n in range(count)])
        self.assertEqual(ids, list(range(1, count + 1)))
        received = await asyncio.gather(*(sub.events(count, timeout=30) for sub in subs))
        for sub, events in zip(subs, received):
            self.assertContiguous([e["id"] for e in events], 1, count)
            self.assertEqual([e["data"]["n"] for e in events], list(range(count)))
        # One encoding shared by all: every subscriber got the same bytes.
        first = [e.raw for e in received[0]]
        for events in received[1:]:
            self.assertEqual([e.raw for e in events], first)
        for sub in subs:
            await sub.expect_silence(0.1)


class SlowConsumerTest(ServerTestCase):

    async def test_slow_consumer_is_closed_while_others_keep_up(self):
        server = self.start_server("--client-queue", "100")
        normal = await self.subscribe(server)
        # Never reads past the upgrade and the greeting, with a tiny receive buffer.
        raw = self.raw_socket(server, "/ws/events", rcvbuf=4096)
        self.assertEqual(raw.status, 101, raw.response)
        opcode, payload = raw.read_frame()
        self.assertEqual(opcode, 1)
        raw_id = json.loads(payload)["connection_id"]
        # A websockets client that stops reading (tiny queue and read limit), but can read later.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((HOST, server.port))
        lazy = await self.subscribe(server, auto_pong=False, sock=sock, max_queue=1,
                                    read_limit=1024)

        pub = await self.publisher(server)
        latencies = []
        seq = 0

        async def publish_batch(size=20):
            nonlocal seq
            frames = [{"seq": seq + k, "sent": time.monotonic(), "pad": "x" * 2000}
                      for k in range(size)]
            replies = await pub.pipeline(frames)
            last = replies[-1]["id"]
            # The normal subscriber must keep up: it has this batch soon after the acks.
            for event in await normal.events_until(last, timeout=5):
                latencies.append(event.at - event["data"]["sent"])
                received.append(event["id"])
            seq += size

        received = []
        first_id = None
        for _ in range(1000):  # bounded: up to 20,000 events of 2 KB
            await publish_batch()
            first_id = first_id or received[0]
            if len(server.find_log("slow consumer")) >= 2:
                break
        slow = {r.fields["id"] for r in server.find_log("slow consumer")}
        self.assertEqual(slow, {raw_id, lazy.connection_id}, "both non-readers are slow consumers")
        for _ in range(10):  # and the normal subscriber carries on
            await publish_batch()

        self.assertContiguous(received, first_id, received[-1])
        self.assertEqual(len(received), seq)
        latencies.sort()
        p50, worst = latencies[len(latencies) // 2], latencies[-1]
        self.assertLess(p50, 0.1, f"median latency {p50:.3f}s")
        self.assertLess(worst, 1.0, f"worst latency {worst:.3f}s")
        self.assertEqual(server.find_log("disconnect", id=normal.connection_id), [])

        # The client that can read finds the 1008 "slow consumer" close after what was sent.
        async def drain():
            for _ in range(100_000):
                await lazy.ws.recv()

        with self.assertRaises(websockets.ConnectionClosed):
            await asyncio.wait_for(drain(), 10)
        self.assertEqual(lazy.ws.close_code, 1008)
        self.assertEqual(lazy.ws.close_reason, "slow consumer")
        # The one that never reads is cut off (after a grace period for the close frame).
        await async_wait_for(raw.peer_closed, 10, what="the server to drop the raw socket")
        for conn_id in (raw_id, lazy.connection_id):
            record = await server.wait_log("disconnect", id=conn_id)
            self.assertEqual(record.fields["reason"], "slow consumer")


class PausedReaderTest(ServerTestCase):

    async def test_a_reader_that_pauses_gets_every_frame_whole_and_in_order(self):
        # More than the socket buffers can hold (tcp_wmem's maximum is 4 MiB), so writes to the
        # paused reader come back short and the rest waits in the server: what was cut must go
        # out whole, before anything later, while another subscriber is served at once.
        server = self.start_server("--client-queue-bytes", "32MiB")
        paused = self.raw_socket(server, "/ws/events", rcvbuf=4096, timeout=20)
        self.assertEqual(paused.status, 101, paused.response)
        self.assertEqual(json.loads(paused.read_frame()[1])["type"], "ping")
        normal = await self.subscribe(server)
        count, pad = 600, "0123456789" * 1000
        datas = [{"n": n, "pad": pad} for n in range(count)]
        # One at a time: each event is written as soon as it is stored, so the write that finds
        # the socket full is one made right after a hand-off, not one in a writable round.
        pub = await self.publisher(server)
        ids = []
        for data in datas:
            ids.append((await pub.publish({"type": "event", "data": data}))["id"])
        self.assertEqual(len(await normal.events(count, timeout=30)), count)
        received = []
        for _ in range(count + 100):  # bounded: pings may come between the events
            opcode, payload = await asyncio.to_thread(paused.read_frame)
            self.assertEqual(opcode, 1)
            message = json.loads(payload)
            if message["type"] == "event":
                received.append(message)
            if len(received) == count:
                break
        self.assertEqual([m["id"] for m in received], ids)
        self.assertEqual([m["data"] for m in received], datas)


class MessageSizeTest(ServerTestCase):

    async def test_frames_over_max_message_bytes_get_1009(self):
        server = self.start_server("--max-message-bytes", "1000")
        watcher = await self.subscribe(server)
        pub = await self.publisher(server)
        # At the limit is fine.
        frame = '{"pad":"' + "x" * (1000 - len('{"pad":""}')) + '"}'
        self.assertEqual(len(frame), 1000)
        self.assertEqual((await pub.publish(frame)).type, "ack")

        too_big = '{"pad":"' + "x" * 1000 + '"}'
        cases = {
            "publish text": ("/ws/publish", too_big),
            # Each fragment is under the limit, the message is not. (The limit is crossed by the
            # last fragment: lws 4.1 drops the TCP connection right after its close frame, so a
            # client still sending more fragments may get a reset and see 1006 instead.)
            "publish fragmented": ("/ws/publish", ['{"pad":"' + "x" * 600, "x" * 600 + '"}']),
            "publish binary": ("/ws/publish", too_big.encode()),
            "subscriber text": ("/ws/events", '{"type":"pong","pad":"' + "x" * 1000 + '"}'),
        }
        for name, (path, payload) in cases.items():
            with self.subTest(name):
                ws = await self.ws(f"{server.url}{path}")
                if path == "/ws/events":
                    await ws.recv()  # the greeting
                await ws.send(payload)
                with self.assertRaises(websockets.ConnectionClosed):
                    for _ in range(10):
                        await asyncio.wait_for(ws.recv(), 5)
                self.assertEqual(ws.close_code, 1009, name)
        # Nothing oversized was stored, and the other connections are untouched.
        after = await pub.publish({"after": True})
        self.assertEqual(after["id"], 2)
        got = await watcher.events(2)
        self.assertEqual([e["id"] for e in got], [1, 2])
        self.assertEqual(
            len(server.find_log("disconnect", reason="message larger than 1000 bytes")),
            len(cases))

    async def test_acks_owed_before_an_oversized_frame_are_sent_before_1009(self):
        server = self.start_server("--max-message-bytes", "1000")
        ws = await self.ws(f"{server.url}/ws/publish")
        count = 200
        for n in range(count):  # no waiting: most are still being committed when the big one lands
            await ws.send(json.dumps({"n": n}))
        await ws.send('{"pad":"' + "x" * 2000 + '"}')
        replies = []
        with self.assertRaises(websockets.ConnectionClosed):
            for _ in range(count + 1):
                replies.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
        self.assertEqual(ws.close_code, 1009)
        self.assertEqual(ws.close_reason, "message larger than 1000 bytes")
        self.assertEqual([r["type"] for r in replies], ["ack"] * count)
        self.assertEqual([r["id"] for r in replies], list(range(1, count + 1)))


class ConnectionLimitTest(ServerTestCase):

    async def test_past_max_clients_upgrades_get_503_and_existing_connections_work(self):
        server = self.start_server("--max-clients", "3")
        sub1 = await self.subscribe(server)
        sub2 = await self.subscribe(server)
        pub = await self.publisher(server)
        for path in ("/ws/events", "/ws/publish", "/ws/events?since=0"):
            with self.subTest(path):
                raw = self.raw_socket(server, path)
                self.assertEqual(raw.status, 503, raw.response)
                self.assertTrue(raw.peer_closed_within(5), "a refused upgrade must be closed")
                with self.assertRaises(websockets.InvalidHandshake):
                    await self.ws(f"{server.url}{path}")
        self.assertGreaterEqual(len(server.find_log("refused", status=503)), 6)

        ack = await pub.publish({"still": "working"})
        for sub in (sub1, sub2):
            (event,) = await sub.events(1)
            self.assertEqual(event["id"], ack["id"])

        # A freed slot can be taken again (the server processes the close asynchronously).
        await sub2.close()
        await server.wait_log("disconnect", id=sub2.connection_id)
        sub3 = await self.subscribe(server, "since=0")
        (event,) = await sub3.events(1)
        self.assertEqual(event["id"], ack["id"])


class UnknownPathTest(ServerTestCase):

    async def test_unknown_websocket_path_gets_404(self):
        server = self.start_server()
        for path in ("/ws/other", "/ws/other?since=0", "/ws", "/ws/", "/ws/events/extra", "/",
                     "/api/health"):
            with self.subTest(path):
                raw = self.raw_socket(server, path)
                self.assertEqual(raw.status, 404, raw.response)
                self.assertTrue(raw.peer_closed_within(5), "a refused upgrade must be closed")
                with self.assertRaises(websockets.InvalidHandshake):
                    await self.ws(f"{server.url}{path}")
        # The server still serves the real paths.
        sub = await self.subscribe(server)
        self.assertEqual(sub.last_id, 0)

    async def test_refusal_status_is_readable_by_websockets_clients(self):
        # An HTTP/1.1 upgrade request must be refused with an HTTP/1.1 response (RFC 9110 6.2:
        # the highest version the server conforms to), or python-websockets reports "did not
        # receive a valid HTTP response" instead of the status. lws 4.1 answers HTTP/1.0 here.
        server = self.start_server()
        raw = self.raw_socket(server, "/ws/other")
        self.assertTrue(raw.response.startswith(b"HTTP/1.1 404 "), raw.response)
        with self.assertRaises(websockets.InvalidStatusCode) as caught:
            await self.ws(f"{server.url}/ws/other")
        self.assertEqual(caught.exception.status_code, 404)


if __name__ == "__main__":
    unittest.main()
