"""serve --threads N: the connections spread over N service threads (each its own lws context on a
shared port). Whichever thread holds it, every subscriber gets every event once and in id order,
live and across the catch-up handover; publishers on any thread get their acks; /api/health and
/metrics count the whole server whichever thread answers; --max-clients counts all threads;
SIGTERM drains and closes every thread's clients; a second server cannot share the port."""
import asyncio
import http.client
import json
import signal
import unittest

import websockets

from evtest import HOST, ServerTestCase, async_wait_for, run_serve_once

THREADS = 3


def http_get(server, path):
    conn = http.client.HTTPConnection(HOST, server.port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def health(server):
    status, text = http_get(server, "/api/health")
    assert status == 200, text
    return json.loads(text)


def metrics(server):
    status, text = http_get(server, "/metrics")
    assert status == 200, text
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def per_thread(server, kind):
    return [thread[kind] for thread in health(server)["threads"]]


class ThreadsTest(ServerTestCase):

    async def wait_counts(self, server, subscribers, publishers=0):
        """Waits until health counts exactly these connections; the per-thread subscribers."""
        await async_wait_for(
            lambda: (lambda h: h["subscribers"] == subscribers and h["publishers"] == publishers)(
                health(server)), 10, interval=0.05,
            what=f"{subscribers} subscribers and {publishers} publishers in health")
        return per_thread(server, "subscribers")

    async def publishers_on_two_threads(self, server, subscribers):
        """Publishers, opened until at least two threads hold one (the kernel picks the thread)."""
        publishers = []
        for _ in range(40):
            publishers.append(await self.publisher(server))
            await self.wait_counts(server, subscribers, len(publishers))
            if sum(1 for n in per_thread(server, "publishers") if n > 0) >= 2:
                return publishers
        self.fail(f"40 publishers all landed on one thread: {per_thread(server, 'publishers')}")

    async def test_a_burst_reaches_every_subscriber_on_every_thread_in_order(self):
        server = self.start_server("--threads", str(THREADS))
        self.assertEqual(len(health(server)["threads"]), THREADS)
        subs = [await self.subscribe(server) for _ in range(45)]
        spread = await self.wait_counts(server, 45)
        self.assertEqual(sum(spread), 45)
        self.assertTrue(all(n > 0 for n in spread), f"a thread holds no subscriber: {spread}")
        publishers = await self.publishers_on_two_threads(server, 45)
        per_publisher = max(1200 // len(publishers), 20)
        total = per_publisher * len(publishers)

        async def burst(index, publisher):
            frames = [{"type": "event", "data": {"p": index, "n": n}} for n in range(per_publisher)]
            return await publisher.pipeline(frames, timeout=60)

        replies = await asyncio.gather(*(burst(i, p) for i, p in enumerate(publishers)))
        published = {}  # id -> data, from each publisher's acks (replies come in frame order)
        for index, got in enumerate(replies):
            self.assertEqual([r.type for r in got], ["ack"] * per_publisher, f"publisher {index}")
            ids = [r["id"] for r in got]
            self.assertEqual(ids, sorted(ids), f"publisher {index}: acks out of order")
            published.update((r["id"], {"p": index, "n": n}) for n, r in enumerate(got))
        self.assertEqual(sorted(published), list(range(1, total + 1)))
        for sub in subs:
            events = await sub.events(total, timeout=60)
            self.assertContiguous([e["id"] for e in events], 1, total)
            self.assertTrue(all(e["data"] == published[e["id"]] for e in events))

        # Whichever thread answers, the figures are the whole server's.
        for _ in range(2 * THREADS):
            h = health(server)
            self.assertEqual(h["subscribers"], 45)
            self.assertEqual(h["publishers"], len(publishers))
            self.assertEqual(sum(t["subscribers"] for t in h["threads"]), 45)
            self.assertEqual(sum(t["publishers"] for t in h["threads"]), len(publishers))
            self.assertEqual(h["events_total"], total)
            self.assertEqual(h["last_event_id"], total)
            m = metrics(server)
            self.assertEqual(m['evstream_connections{kind="subscriber"}'], 45)
            self.assertEqual(m['evstream_connections{kind="publisher"}'], len(publishers))
            self.assertEqual(sum(v for k, v in m.items() if k.startswith("evstream_thread_connections{")
                                 and 'kind="subscriber"' in k), 45)
            self.assertEqual(m["evstream_events_in_total"], total)
            self.assertEqual(m["evstream_ingest_to_enqueue_seconds_count"], total)
            # One delivery sample per event and subscriber, whichever thread wrote it.
            self.assertEqual(m["evstream_delivery_seconds_count"], 45 * total)
            # Greetings, events and acks at least.
            self.assertGreaterEqual(m["evstream_messages_out_total"], 45 * (total + 1) + total)
            self.assertEqual(m["evstream_slow_consumer_closes_total"], 0)

    async def test_since_from_an_ack_of_another_thread_resumes_without_gap_or_duplicate(self):
        # An ack tells a client an id that another thread may not have broadcast yet; a
        # subscriber that lands there with since=ID must start right after ID all the same.
        server = self.start_server("--threads", str(THREADS))
        background = await self.publisher(server)
        stop = asyncio.Event()

        async def keep_publishing():
            n = 0
            while not stop.is_set():
                await background.pipeline([{"bg": n + i} for i in range(20)])
                n += 20

        load = asyncio.ensure_future(keep_publishing())
        try:
            pub = await self.publisher(server)
            resumed = []
            for i in range(30):
                acked = (await pub.publish({"mark": i}))["id"]
                resumed.append((acked, await self.subscribe(server, f"since={acked}")))
                resumed.append((None, await self.subscribe(server, "last=3")))
        finally:
            stop.set()
            await asyncio.wait_for(load, 30)
        last = (await pub.publish({"mark": "end"}))["id"]
        for since, sub in resumed:
            # recv() fails on anything but events, an "above the newest stored id" error included.
            events = await sub.events_until(last, timeout=30)
            ids = [e["id"] for e in events]
            first = since + 1 if since is not None else ids[0]
            self.assertContiguous(ids, first, last)

    async def test_max_clients_counts_every_thread(self):
        server = self.start_server("--threads", str(THREADS), "--max-clients", "12")
        subs = [await self.subscribe(server) for _ in range(12)]
        spread = await self.wait_counts(server, 12)
        self.assertGreater(sum(1 for n in spread if n > 0), 1, spread)
        # Past the limit, refused whichever thread takes the connection.
        for _ in range(6):
            raw = self.raw_socket(server, "/ws/events")
            self.assertEqual(raw.status, 503, raw.response)
            raw.close()
        await subs[0].close()
        await self.wait_counts(server, 11)
        await self.subscribe(server)

    async def test_sigterm_drains_and_closes_every_thread(self):
        server = self.start_server("--threads", str(THREADS))
        subs = [await self.subscribe(server) for _ in range(15)]
        spread = await self.wait_counts(server, 15)
        self.assertGreater(sum(1 for n in spread if n > 0), 1, spread)
        publishers = await self.publishers_on_two_threads(server, 15)
        got = {id(p): [] for p in publishers}

        async def drain(ws, into):
            try:
                async for raw in ws:
                    into.append(json.loads(raw))
            except websockets.ConnectionClosed:
                pass

        async def send(publisher):
            try:
                for n in range(400):
                    await publisher.ws.send(json.dumps({"n": n}))
                    if n % 20 == 0:
                        await asyncio.sleep(0)
            except websockets.ConnectionClosed:
                pass

        readers = [asyncio.ensure_future(drain(p.ws, got[id(p)])) for p in publishers]
        sub_got = [[] for _ in subs]
        readers += [asyncio.ensure_future(drain(s.ws, into)) for s, into in zip(subs, sub_got)]
        senders = [asyncio.ensure_future(send(p)) for p in publishers]
        await async_wait_for(lambda: sum(len(v) for v in got.values()) >= 200, 10,
                             what="200 acks before the signal")
        server.send_signal(signal.SIGTERM)
        self.assertEqual(await server.wait_exit(), 0)
        await asyncio.wait_for(asyncio.gather(*senders, *readers), 10)
        acked = set()
        for publisher in publishers:
            replies = got[id(publisher)]
            acks = [r for r in replies if r["type"] == "ack"]
            self.assertEqual(replies[:len(acks)], acks, "an ack after an error")
            for error in replies[len(acks):]:
                self.assertIn("shutting down", error["message"])
            acked.update(a["id"] for a in acks)
            self.assertEqual((publisher.ws.close_code, publisher.ws.close_reason),
                             (1001, "going away"))
        self.assertEqual(sorted(acked), list(range(1, len(acked) + 1)))
        for sub, messages in zip(subs, sub_got):
            ids = [m["id"] for m in messages if m["type"] == "event"]
            # Every acked event (and whatever was stored behind it) reached every thread's
            # subscribers before their close.
            self.assertContiguous(ids, 1, ids[-1])
            self.assertGreaterEqual(ids[-1], max(acked))
            self.assertEqual((sub.ws.close_code, sub.ws.close_reason), (1001, "going away"))

    async def test_a_second_server_cannot_share_the_port(self):
        server = self.start_server("--threads", "2")
        for threads in ("2", "1"):
            code, out, err = run_serve_once(["--host", HOST, "--port", str(server.port),
                                             "--db", ":memory:", "--threads", threads])
            self.assertEqual(code, 1, err)
            self.assertEqual(out, "")
            self.assertIn("in use", err)
        self.assertEqual(health(server)["status"], "ok")

    async def test_one_thread(self):
        server = self.start_server("--threads", "1")
        sub = await self.subscribe(server)
        self.assertEqual(await self.publish_many(server, [{"a": 1}, {"a": 2}]), [1, 2])
        self.assertEqual([e["id"] for e in await sub.events(2)], [1, 2])
        self.assertEqual(health(server)["threads"], [{"subscribers": 1, "publishers": 0}])
        self.assertEqual(server.find_log("listening")[0].fields["threads"], "1")


if __name__ == "__main__":
    unittest.main()
