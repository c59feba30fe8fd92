"""/ws/events: the subscriber protocol (greeting, pings, pongs, bad input, dead clients) and the
subscription parameters since=, last=, topic= with catch-up handed over to live delivery."""
import asyncio
import json
import re
import time
import unittest

import websockets

from evtest import ServerTestCase, async_wait_for

RFC3339_US = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
PING_INTERVAL = 0.3  # seconds; the tests that time pings run serve with --ping-interval 300ms


class SubscriberProtocolTest(ServerTestCase):

    async def test_first_message_is_ping_with_connection_id_and_last_id(self):
        server = self.start_server()
        empty = await self.subscribe(server)
        self.assertEqual(set(empty.first.obj), {"type", "timestamp", "connection_id", "last_id"})
        self.assertRegex(empty.first["timestamp"], RFC3339_US)
        self.assertIsInstance(empty.connection_id, str)
        self.assertTrue(empty.connection_id)
        self.assertEqual(empty.last_id, 0)

        ids = await self.publish_many(server, [{"n": n} for n in range(3)])
        a = await self.subscribe(server)
        b = await self.subscribe(server)
        self.assertEqual(a.last_id, ids[-1])
        self.assertEqual(b.last_id, ids[-1])
        self.assertEqual(len({empty.connection_id, a.connection_id, b.connection_id}), 3,
                         "each connection gets its own id")
        for sub in (empty, a, b):
            await server.wait_log("connect", id=sub.connection_id, path="/ws/events")

    async def test_pings_every_interval(self):
        server = self.start_server("--ping-interval", "300ms")
        sub = await self.subscribe(server)
        got = await sub.pump(lambda: len(sub.pings) >= 7, timeout=7 * PING_INTERVAL + 5)
        self.assertEqual(got, [], "only pings were expected")
        for ping in sub.pings:
            self.assertEqual(set(ping.obj), {"type", "timestamp"}, ping)
            self.assertRegex(ping["timestamp"], RFC3339_US)
        # The first periodic ping lands anywhere in the first interval; time the gaps after it.
        gaps = [b.at - a.at for a, b in zip(sub.pings, sub.pings[1:])]
        for gap in gaps:
            self.assertGreater(gap, PING_INTERVAL / 2, gaps)
            self.assertLess(gap, PING_INTERVAL * 2.5, gaps)
        mean = sum(gaps) / len(gaps)
        self.assertAlmostEqual(mean, PING_INTERVAL, delta=PING_INTERVAL / 3, msg=gaps)

    async def test_pong_accepted_and_answering_client_stays_connected(self):
        server = self.start_server("--ping-interval", "300ms")
        with_ts = await self.subscribe(server)
        bare = await self.subscribe(server, pong_timestamp=False)  # {"type":"pong"} only

        async def run(sub):
            # 8 pings is 2.4 s: four times the 2 x interval after which a silent client goes.
            return await sub.pump(lambda: len(sub.pings) >= 8, timeout=8 * PING_INTERVAL + 5)

        got = await asyncio.gather(run(with_ts), run(bare))
        self.assertEqual(got, [[], []], "a pong must get no reply")
        ids = await self.publish_many(server, [{"still": "here"}])
        for sub in (with_ts, bare):
            (event,) = await sub.events(1)
            self.assertEqual(event["id"], ids[0])
            self.assertEqual(server.find_log("disconnect", id=sub.connection_id), [])

    async def test_bad_client_messages_get_errors_and_connection_stays_open(self):
        server = self.start_server()
        sub = await self.subscribe(server)
        bad = [
            "not json",
            '{"type":"pong"',          # truncated
            "[1,2]",                   # not an object
            '"pong"',
            "42",
            "null",
            "{}",                      # no type
            '{"type":"hello"}',        # unknown type
            '{"type":7}',
            '{"type":"event","data":{"x":1}}',  # subscribers do not publish
            b"\x00\x01\x02",           # binary frame
            b'{"type":"pong"}',        # a valid pong, but binary
        ]
        # One at a time: exactly one error reply each.
        for frame in bad:
            await sub.ws.send(frame)
            reply = await sub.recv()
            self.assertEqual(reply.type, "error", f"{frame!r} -> {reply}")
            self.assertIsInstance(reply["message"], str)
            self.assertTrue(reply["message"], reply)
        # As a burst, with valid pongs in between that must get no reply.
        for frame in bad:
            await sub.ws.send(frame)
            await sub.ws.send('{"type":"pong","timestamp":"2026-11-25T17:01:12.123456Z"}')
        for frame in bad:
            reply = await sub.recv()
            self.assertEqual(reply.type, "error", f"{frame!r} -> {reply}")
        # Still open and subscribed: the next message is the next event, no stray error.
        ids = await self.publish_many(server, [{"after": "errors"}])
        (event,) = await sub.events(1)
        self.assertEqual(event["id"], ids[0])
        self.assertEqual(server.find_log("disconnect", id=sub.connection_id), [])

    async def test_silent_client_is_closed_and_removed(self):
        server = self.start_server("--ping-interval", "300ms")
        # Sends WebSocket-level pings every 100 ms (and lws answers them), reads everything, but
        # never answers an app ping: WS control frames must not count as life.
        silent_ws = await self.ws(f"{server.url}/ws/events", ping_interval=0.1, ping_timeout=5)
        started = time.monotonic()
        silent_id = json.loads(await silent_ws.recv())["connection_id"]
        alive = await self.subscribe(server)

        async def drain_until_closed():
            for _ in range(1000):
                await silent_ws.recv()
            raise AssertionError("the silent client was never closed")

        silent_closed = asyncio.ensure_future(drain_until_closed())
        # Meanwhile the other client answers its pings.
        await alive.pump(silent_closed.done, timeout=2 * PING_INTERVAL + 5)
        lifetime = time.monotonic() - started
        with self.assertRaises(websockets.ConnectionClosed):
            await silent_closed
        self.assertGreater(lifetime, 2 * PING_INTERVAL * 0.9, "closed before 2 x ping interval")
        self.assertLess(lifetime, 4 * PING_INTERVAL + 1.5, "closed much later than 2 x interval")
        record = await server.wait_log("disconnect", id=silent_id)
        self.assertTrue(record.fields["reason"].startswith("dead"), record)

        # The client that answers stays, and keeps getting events.
        ids = await self.publish_many(server, [{"after": "dead"}])
        (event,) = await alive.events(1)
        self.assertEqual(event["id"], ids[0])
        self.assertEqual(server.find_log("disconnect", id=alive.connection_id), [])


TOPICS = ["a", "b", "c"]


class SubscriptionParametersTest(ServerTestCase):
    """Twelve stored events, topics a,b,c,a,b,c,...; then live ones."""

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.server = self.start_server()
        pub = await self.publisher(self.server)
        self.topic_of = {}
        replies = await pub.pipeline([{"type": "event", "topic": TOPICS[i % 3], "data": {"i": i}}
                                      for i in range(12)])
        for i, reply in enumerate(replies):
            self.assertEqual(reply.type, "ack", reply)
            self.topic_of[reply["id"]] = TOPICS[i % 3]
        self.assertEqual(sorted(self.topic_of), list(range(1, 13)))
        self.pub = pub

    async def publish_live(self, topics):
        replies = await self.pub.pipeline([{"type": "event", "topic": t, "data": {"live": t}}
                                           for t in topics])
        for reply, topic in zip(replies, topics):
            self.assertEqual(reply.type, "ack", reply)
            self.topic_of[reply["id"]] = topic
        return [reply["id"] for reply in replies]

    async def test_since_last_topic_catch_up_then_live(self):
        cases = {
            "": [],
            "since=0": list(range(1, 13)),
            "since=5": list(range(6, 13)),
            "since=12": [],
            "last=3": [10, 11, 12],
            "last=0": [],
            "last=100": list(range(1, 13)),
            "topic=a": [],
            "topic=a&since=0": [1, 4, 7, 10],
            "topic=a&topic=c&since=2": [3, 4, 6, 7, 9, 10, 12],
            "topic=b&last=2": [8, 11],
            "topic=b&topic=c&last=3": [9, 11, 12],
            "topic=nosuch&since=0": [],
        }
        subs = {query: await self.subscribe(self.server, query) for query in cases}
        for query, sub in subs.items():
            self.assertEqual(sub.last_id, 12, query)
        live = await self.publish_live(["a", "b", "c", "a", "b", "c"])
        # Sentinels: every subscriber's last expected event is the first one it wants, so any
        # duplicate or stray event shows up as a mismatch before it.
        sentinels = await self.publish_live(["nosuch", "a", "b", "c"])

        def wanted(query, event_id):
            topics = re.findall(r"topic=(\w+)", query)
            return not topics or self.topic_of[event_id] in topics

        for query, sub in subs.items():
            expected = cases[query] + [i for i in live if wanted(query, i)]
            expected.append(next(i for i in sentinels if wanted(query, i)))
            got = await sub.events(len(expected))
            self.assertEqual([e["id"] for e in got], expected, query)
            for event in got:
                self.assertTrue(wanted(query, event["id"]), (query, event))
                self.assertEqual(event["topic"], self.topic_of[event["id"]])
                self.assertEqual(set(event.obj), {"type", "id", "topic", "time", "data"})
                self.assertRegex(event["time"], RFC3339_US)

    async def test_since_above_last_id_gets_error_then_live(self):
        sub = await self.subscribe(self.server, "since=1000")
        self.assertEqual(sub.last_id, 12)
        error = await sub.recv()
        self.assertEqual(error.type, "error", error)
        self.assertIn("1000", error["message"])
        self.assertIn("12", error["message"])
        live = await self.publish_live(["a", "b"])
        got = await sub.events(2)
        self.assertEqual([e["id"] for e in got], live)

    async def test_bad_parameters_get_error_then_1008(self):
        for query in ["since=abc", "since=-1", "since=", "last=xyz", "last=-5", "topic=bad!topic",
                      "topic=", "since=1&last=2"]:
            with self.subTest(query=query):
                sub = await self.subscribe(self.server, query)
                error = await sub.recv()
                self.assertEqual(error.type, "error", error)
                self.assertTrue(error["message"])
                with self.assertRaises(websockets.ConnectionClosed):
                    await sub.recv()
                self.assertEqual(sub.ws.close_code, 1008, query)


class CatchUpHandoverTest(ServerTestCase):

    async def test_catch_up_under_live_load_has_no_gap_and_no_duplicate(self):
        stored = 20_000
        server = self.start_server("--client-queue", "16384")
        data_of = {}
        ids = await self.publish_many(server, [{"i": i} for i in range(stored)])
        self.assertEqual(ids, list(range(1, stored + 1)))
        data_of.update({id_: i for i, id_ in enumerate(ids)})

        pub = await self.publisher(server)
        acked = []  # ids acked while the subscriber connects and catches up
        stop = asyncio.Event()

        async def keep_publishing():
            seq = stored
            for _ in range(2000):  # bounded: at most 2000 batches
                if stop.is_set():
                    return
                batch = [{"i": seq + k} for k in range(20)]
                replies = await pub.pipeline(batch)
                for k, reply in enumerate(replies):
                    self.assertEqual(reply.type, "ack", reply)
                    data_of[reply["id"]] = seq + k
                    acked.append(reply["id"])
                seq += len(batch)
                await asyncio.sleep(0.002)  # pacing, so a Python reader can keep up live

        publishing = asyncio.ensure_future(keep_publishing())
        await async_wait_for(lambda: len(acked) >= 200, 10, what="live publishing to start")
        sub = await self.subscribe(server, "since=0")
        head_at_connect = sub.last_id
        self.assertGreater(head_at_connect, stored)
        received = await sub.events_until(head_at_connect, timeout=30)
        acked_when_caught_up = acked[-1]
        # Keep publishing a little past the hand-over, then stop and read up to the final id.
        await async_wait_for(lambda: acked[-1] >= acked_when_caught_up + 500 or publishing.done(),
                             15, what="publishing past the hand-over")
        stop.set()
        await asyncio.wait_for(publishing, 15)
        final = acked[-1]
        received += await sub.events_until(final, timeout=30)

        self.assertGreater(acked_when_caught_up, head_at_connect,
                           "events must have kept arriving during the catch-up")
        got = [e["id"] for e in received]
        self.assertContiguous(got, 1, final)
        for event in received:
            self.assertEqual(event["data"], {"i": data_of[event["id"]]})
        await sub.expect_silence(0.2)

    async def test_last_n_over_a_topic_spans_pages_under_live_load(self):
        # 700 of topic a among 1400 stored: last=600 walks back three pages of ids, then catches
        # up forward, while publishing goes on; exactly the last 600 a's, then every later a.
        server = self.start_server("--client-queue", "16384")
        pub = await self.publisher(server)
        topic_of = {}

        async def publish(count, start):
            frames = [{"type": "event", "topic": "ab"[(start + k) % 2], "data": {"i": start + k}}
                      for k in range(count)]
            for frame, reply in zip(frames, await pub.pipeline(frames)):
                self.assertEqual(reply.type, "ack", reply)
                topic_of[reply["id"]] = frame["topic"]

        await publish(1400, 0)
        stop = asyncio.Event()

        async def keep_publishing():
            for batch in range(500):  # bounded
                if stop.is_set():
                    return
                await publish(10, 1400 + 10 * batch)
                await asyncio.sleep(0.002)

        publishing = asyncio.ensure_future(keep_publishing())
        await async_wait_for(lambda: len(topic_of) >= 1500, 10, what="live publishing to start")
        sub = await self.subscribe(server, "topic=a&last=600")
        head_at_connect = sub.last_id
        # Acks come in id order: once one past head is in, every topic up to head is known.
        await async_wait_for(lambda: max(topic_of) >= head_at_connect, 10,
                             what="the acks of everything up to head")
        a_ids = sorted(i for i, t in topic_of.items() if t == "a" and i <= head_at_connect)
        received = await sub.events_until(a_ids[-1], timeout=30)
        await async_wait_for(lambda: max(topic_of) >= head_at_connect + 200 or publishing.done(),
                             15, what="publishing past the hand-over")
        stop.set()
        await asyncio.wait_for(publishing, 15)
        final_a = max(i for i, t in topic_of.items() if t == "a")
        received += await sub.events_until(final_a, timeout=30)

        expected = a_ids[-600:] + sorted(
            i for i, t in topic_of.items() if t == "a" and i > head_at_connect)
        self.assertEqual([e["id"] for e in received], expected)
        self.assertTrue(all(e["topic"] == "a" for e in received))
        await sub.expect_silence(0.2)


if __name__ == "__main__":
    unittest.main()
