"""Cluster mode: several `evstream serve --nats` nodes share one JetStream stream.

Real nats-server processes (natstest.py) on free loopback ports, real serve nodes, real
WebSocket and HTTP clients. Counts are asserted, never eyeballed; every wait has a deadline.
"""
import asyncio
import json
import os
import re
import subprocess
import urllib.error
import urllib.request

import websockets

from evtest import ClientTestCase, async_wait_for, run_serve_once
from natstest import NatsServer, jetstream_api, nats_cluster


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def http_url(server):
    return server.url.replace("ws://", "http://")


def rest_pages(server, query="limit=7&order=asc"):
    """Every page of GET /api/events, following `next`, as raw JSON objects."""
    pages, path = [], f"/api/events?{query}"
    for _ in range(1000):  # bounded: 1000 pages is far more than any test stores
        page = get_json(http_url(server) + path)
        pages.append(page)
        if page["next"] is None:
            return pages
        path = page["next"]
    raise AssertionError("paging did not end")


async def write_paced(feed, total):
    """Feeds lines {"seq": 0..total-1} to a publish child, 50 every 20 ms, then ends its input.
    Paced (not a synchronisation): events keep flowing while a test kills a process, so frames
    are in flight and unacked at the moment of the kill."""
    for start in range(0, total, 50):
        feed.write("".join(json.dumps({"seq": i}) + "\n" for i in range(start, start + 50)))
        await asyncio.sleep(0.02)
    feed.close_stdin()


class ClusterTest(ClientTestCase):
    async def asyncSetUp(self):
        self.nats = NatsServer(self.tmpdir).start()
        self.addCleanup(self.nats.stop)  # registered first, so it runs after the nodes stopped
        await super().asyncSetUp()

    def node(self, name, *args, stream="EVSTREAM"):
        return self.start_server("--nats", self.nats.url, "--nats-stream", stream, *args,
                                 db=os.path.join(self.tmpdir, f"{name}.db"), name=name)

    async def wait_replicated(self, server, last_id, timeout=10.0):
        await self.async_wait(lambda: get_json(http_url(server) + "/api/health")["last_event_id"]
                              >= last_id, timeout, f"{server.url} to replicate up to {last_id}")

    async def async_wait(self, condition, timeout, what):
        await async_wait_for(condition, timeout, interval=0.02, what=what)

    async def test_events_published_on_each_node_reach_every_node_in_one_order(self):
        a, b, c = self.node("a"), self.node("b"), self.node("c")
        subs = [await self.subscribe(node) for node in (a, b, c)]
        acked = []
        for node, tag in ((a, "a"), (b, "b"), (c, "c"), (a, "a2")):
            acked += await self.publish_many(node, [{"from": tag, "i": i} for i in range(40)])
        # HTTP publishes take the same path: NDJSON batch on node b.
        body = "\n".join(json.dumps({"http": i}) for i in range(10)).encode()
        request = urllib.request.Request(http_url(b) + "/api/events", data=body, method="POST",
                                         headers={"Content-Type": "application/x-ndjson"})
        with urllib.request.urlopen(request, timeout=5) as response:
            acked += json.loads(response.read())["ids"]
        self.assertEqual(acked, list(range(1, 171)), "ids are the stream's sequence, no gap")
        seen = []
        for sub in subs:
            events = await sub.events(170, timeout=15)
            seen.append([(e["id"], e["topic"], json.dumps(e["data"], sort_keys=True))
                         for e in events])
        self.assertEqual([ids for ids, _, _ in seen[0]], acked)
        self.assertEqual(seen[0], seen[1])
        self.assertEqual(seen[0], seen[2])
        # REST pages are identical on every node, times included.
        pages = [rest_pages(node) for node in (a, b, c)]
        self.assertEqual(pages[0], pages[1])
        self.assertEqual(pages[0], pages[2])
        self.assertEqual(sum(len(p["events"]) for p in pages[0]), 170)
        health = get_json(http_url(c) + "/api/health")
        self.assertEqual(health["last_event_id"], 170)
        self.assertEqual(health["nats"]["stream"], "EVSTREAM")
        self.assertTrue(health["nats"]["connected"])
        self.assertEqual(health["nats"]["stream_last_seq"], 170)
        self.assertEqual(health["nats"]["lag"], 0)
        metrics = urllib.request.urlopen(http_url(c) + "/metrics", timeout=5).read().decode()
        self.assertIn("evstream_nats_connected 1\n", metrics)
        self.assertIn("evstream_nats_replica_lag 0\n", metrics)

    async def test_resume_on_another_node_has_no_gap_and_no_duplicate(self):
        a, b = self.node("a"), self.node("b")
        ids = await self.publish_many(a, [{"i": i} for i in range(60)])
        await self.wait_replicated(b, ids[-1])
        # A subscriber saw up to id 25 on node a, and resumes on node b.
        sub = await self.subscribe(b, "since=25")
        self.assertEqual(sub.last_id, 60)
        events = await sub.events_until(60)
        self.assertEqual([e["id"] for e in events], list(range(26, 61)))
        more = await self.publish_many(a, [{"j": j} for j in range(5)])
        live = await sub.events(5)
        self.assertEqual([e["id"] for e in live], more)
        last = await self.subscribe(b, "last=3")
        self.assertEqual([e["id"] for e in await last.events(3)], [63, 64, 65])

    async def test_loadtest_publishes_on_one_node_and_measures_on_another(self):
        a, b = self.node("a"), self.node("b")
        code, out, err = self.cli("loadtest", "--url", b.url, "--publish-url", a.url,
                                  "--clients", "5", "--duration", "1s", "--rate", "20",
                                  "--json", "--slo", "loss=0", timeout=30)
        self.assertEqual(code, 0, err)
        report = json.loads(out)
        self.assertGreater(report["published"], 0)
        self.assertEqual(report["received"], report["published"] * 5)
        self.assertEqual(report["lost"], 0)
        self.assertEqual(get_json(http_url(a) + "/api/health")["last_event_id"],
                         report["published"])

    async def test_keys_are_deduplicated_across_nodes(self):
        a, b = self.node("a"), self.node("b")
        pub_a, pub_b = await self.publisher(a), await self.publisher(b)
        first = await pub_a.publish({"type": "event", "data": {"n": 1}, "key": "cam1-frame7"})
        again = await pub_b.publish({"type": "event", "data": {"n": 1}, "key": "cam1-frame7"})
        self.assertEqual(first.type, "ack", first)
        self.assertEqual((again.type, again["id"], again.get("duplicate")),
                         ("ack", first["id"], True))
        other = await pub_b.publish({"type": "event", "data": {"n": 2}, "key": "cam1-frame8"})
        self.assertEqual(other["id"], first["id"] + 1)
        await self.wait_replicated(a, other["id"])
        self.assertEqual([e["id"] for e in (await self.stored(a))], [1, 2])

    async def test_a_restarted_node_resumes_and_a_new_node_backfills(self):
        a, b = self.node("a"), self.node("b")
        await self.publish_many(a, [{"i": i} for i in range(30)])
        await self.wait_replicated(b, 30)
        self.assertEqual(await b.stop(), 0)
        await self.publish_many(a, [{"i": i} for i in range(30, 50)])
        b2 = self.start_server("--nats", self.nats.url, db=b.db, name="b2")
        await self.wait_replicated(b2, 50)
        self.assertEqual([e["id"] for e in await self.stored(b2)], list(range(1, 51)))
        fresh = self.node("fresh")
        await self.wait_replicated(fresh, 50)
        self.assertEqual(rest_pages(fresh), rest_pages(a))
        self.assertEqual(rest_pages(b2), rest_pages(a))

    async def test_nats_restart_subscribers_stay_and_catch_up(self):
        a, b = self.node("a"), self.node("b")
        sub = await self.subscribe(b)
        ids = await self.publish_many(a, [{"i": i} for i in range(10)])
        self.assertEqual([e["id"] for e in await sub.events(10)], ids)
        self.nats.kill()
        await self.async_wait(lambda: not get_json(http_url(b) + "/api/health")["nats"]["connected"],
                              10, "node b to see NATS gone")
        self.nats.start()  # same port, same store dir
        await self.async_wait(lambda: get_json(http_url(a) + "/api/health")["nats"]["connected"],
                              15, "node a to reconnect")
        more = await self.publish_many(a, [{"j": j} for j in range(10)])
        self.assertEqual(more, list(range(11, 21)))
        self.assertEqual([e["id"] for e in await sub.events(10, timeout=15)], more)
        # The reconnected callback runs on a cnats thread of its own: wait for it, do not race it.
        await self.async_wait(
            lambda: get_json(http_url(b) + "/api/health")["nats"]["reconnects"] >= 1, 10,
            "node b to count its reconnect")


    async def test_kill_9_of_a_node_mid_stream_clients_fail_over_nothing_lost_or_twice(self):
        total = 2000
        a, b = self.node("a"), self.node("b")
        servers = ["--url", f"{a.url},{b.url}"]
        tail_b_first = self.spawn("tail", "--url", f"{b.url},{a.url}", "--since", "0", "--json")
        tail = self.spawn("tail", *servers, "--since", "0", "--json")
        feed = self.spawn("publish", *servers, "--retry-timeout", "30s", stdin=subprocess.PIPE)

        writer = asyncio.ensure_future(write_paced(feed, total))
        await tail.wait_lines(total // 4, timeout=15)
        a.kill()  # kill -9 mid-stream: the publisher's unacked frames and tail's feed move to b
        await asyncio.wait_for(writer, 30)
        self.assertEqual(await feed.wait_exit(timeout=45), 0, feed.stderr_text())
        summary = re.search(r"published (\d+) events \(ids \d+-\d+\)(?:, (\d+) already "
                            r"stored)?, 0 rejected", feed.stderr_text())
        self.assertIsNotNone(summary, feed.stderr_text())
        self.assertEqual(int(summary.group(1)), total)
        await tail.wait_stderr(r"failing over to " + re.escape(b.url), timeout=10)
        for child in (tail, tail_b_first):
            records = [json.loads(line) for line in await child.wait_lines(total, timeout=30)]
            self.assertContiguous([r["id"] for r in records], 1, total)
            self.assertEqual(sorted(r["data"]["seq"] for r in records), list(range(total)))
        stored = await self.stored(b, timeout=20)
        self.assertEqual(sorted(r["data"]["seq"] for r in stored), list(range(total)),
                         "every line stored exactly once")
        # Nothing more arrives: no replayed duplicates after the failover.
        await self.publish_many(b, [{"seq": total}])
        await tail.wait_lines(total + 1, timeout=10)
        self.assertEqual(json.loads(tail.lines[-1])["id"], total + 1)
        self.assertEqual(len(tail.lines), total + 1)

    async def test_nats_away_past_the_ack_wait_gives_1013_and_503_and_resends_store_once(self):
        a, b = self.node("a"), self.node("b")
        sub = await self.subscribe(b)
        first = await self.publish_many(a, [{"before": 1}])
        self.assertEqual([e["id"] for e in await sub.events(1)], first)
        self.nats.kill()
        pub = await self.publisher(a)
        frames = [{"type": "event", "data": {"k": k}, "key": f"frame-{k}"} for k in range(3)]
        for frame in frames:
            await pub.ws.send(json.dumps(frame))
        # No reply may claim an unconfirmed event stored or lost: the connection ends instead.
        with self.assertRaises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(pub.ws.recv(), 15)
        self.assertEqual(closed.exception.rcvd.code, 1013)
        self.assertIn("try again later", closed.exception.rcvd.reason)
        request = urllib.request.Request(
            http_url(a) + "/api/events", data=b'{"http": 1}', method="POST",
            headers={"Content-Type": "application/json", "Idempotency-Key": "http-1"})
        with self.assertRaises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=15)
        self.assertEqual(refused.exception.code, 503)
        self.assertEqual(refused.exception.headers["Retry-After"], "1")
        self.assertIn("try again later", json.loads(refused.exception.read())["error"])
        # The subscriber on b stayed connected all along; NATS returns and the client resends.
        self.nats.start()
        await self.async_wait(lambda: get_json(http_url(a) + "/api/health")["nats"]["connected"],
                              15, "node a to reconnect")
        again = await self.publisher(a)
        replies = await again.pipeline(frames)
        self.assertEqual([r.type for r in replies], ["ack"] * 3, replies)
        with urllib.request.urlopen(request, timeout=15) as response:
            http_id = json.loads(response.read())["id"]
        ids = sorted({r["id"] for r in replies} | {http_id})
        self.assertEqual(len(ids), 4, "every event stored exactly once")
        got = await sub.events(4, timeout=15)
        self.assertEqual([e["id"] for e in got], ids)
        self.assertEqual(sorted(json.dumps(e["data"]) for e in got),
                         sorted([json.dumps({"k": k}) for k in range(3)] + ['{"http": 1}']))
        await sub.expect_silence(0.3)


class ReplicatedClusterTest(ClientTestCase):
    """Three NATS servers with routes, a stream with 3 replicas, two serve nodes."""

    async def async_wait(self, condition, timeout, what):
        await async_wait_for(condition, timeout, interval=0.05, what=what)

    async def asyncSetUp(self):
        self.nats = await asyncio.to_thread(nats_cluster, self.tmpdir, 3)
        for server in self.nats:
            self.addCleanup(server.stop)  # registered first: they stop after the serve nodes
        await super().asyncSetUp()

    def node(self, name, *args):
        urls = ",".join(server.url for server in self.nats)
        return self.start_server("--nats", urls, "--nats-replicas", "3", *args,
                                 db=os.path.join(self.tmpdir, f"{name}.db"), name=name)

    async def test_kill_9_of_the_stream_leader_mid_publish_loses_and_doubles_nothing(self):
        total = 1500
        a, b = self.node("a"), self.node("b")
        info = jetstream_api(self.nats[0].port, "STREAM.INFO.EVSTREAM")
        self.assertEqual(info["config"]["num_replicas"], 3)
        self.assertEqual(get_json(http_url(a) + "/api/health")["nats"]["replicas"], 3)
        leader_name = info["cluster"]["leader"]
        leader = next(server for server in self.nats if server.name == leader_name)
        tail = self.spawn("tail", "--url", f"{b.url},{a.url}", "--since", "0", "--json")
        feed = self.spawn("publish", "--url", f"{a.url},{b.url}", "--retry-timeout", "60s",
                          stdin=subprocess.PIPE)

        writer = asyncio.ensure_future(write_paced(feed, total))
        await tail.wait_lines(total // 4, timeout=20)
        leader.kill()  # kill -9 of the stream leader while events are being published
        await asyncio.wait_for(writer, 60)
        self.assertEqual(await feed.wait_exit(timeout=60), 0, feed.stderr_text())
        self.assertRegex(feed.stderr_text(), rf"published {total} events .*, 0 rejected")
        records = [json.loads(line) for line in await tail.wait_lines(total, timeout=60)]
        ids = [r["id"] for r in records]
        self.assertEqual(ids, sorted(set(ids)), "strictly increasing, no duplicate")
        self.assertEqual(sorted(r["data"]["seq"] for r in records), list(range(total)),
                         "every acked event delivered exactly once")
        for node in (a, b):
            # A node's replica may still be catching up (its ordered consumer is recreated when
            # the server it was on dies): wait for it, then compare.
            await self.async_wait(
                lambda: get_json(http_url(node) + "/api/health")["last_event_id"] >= ids[-1],
                30, f"{node.url} to replicate up to {ids[-1]}")
            stored = await self.stored(node, timeout=20)
            self.assertEqual([r["id"] for r in stored], ids)


class ClusterStartupTest(ClientTestCase):
    def test_unreachable_nats_is_one_line_and_exit_69(self):
        dead = NatsServer(self.tmpdir)  # never started: nobody listens on its port
        code, out, err = run_serve_once(["--port", "0", "--db", os.path.join(self.tmpdir, "x.db"),
                                         "--nats", dead.url])
        self.assertEqual(code, 69, err)
        self.assertEqual(out, "")
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertIn(f"cannot connect to NATS at {dead.url}", err)
        self.assertIn("start nats-server -js", err)

    def test_bad_flags_are_usage_errors(self):
        db = os.path.join(self.tmpdir, "x.db")
        for args, needle in ((["--nats", "nats://127.0.0.1:1", "--nats-stream", "a.b"],
                              "--nats-stream"),
                             (["--nats", "nats://127.0.0.1:1,"], "--nats: empty URL"),
                             (["--nats", "nats://127.0.0.1:1", "--nats-dedupe-window", "soon"],
                              "--nats-dedupe-window"),
                             (["--nats", "nats://127.0.0.1:1", "--nats-replicas", "9"],
                              "--nats-replicas")):
            with self.subTest(args=args):
                code, _, err = run_serve_once(["--port", "0", "--db", db, *args])
                self.assertEqual(code, 2, err)
                self.assertIn(needle, err)

    async def test_databases_and_streams_that_do_not_fit_are_refused_by_name(self):
        nats = NatsServer(self.tmpdir).start()
        self.addCleanup(nats.stop)
        standalone = self.start_server(db=os.path.join(self.tmpdir, "standalone.db"))
        await self.publish_many(standalone, [{"i": 1}])
        await standalone.stop()
        code, _, err = run_serve_once(["--port", "0", "--db", standalone.db, "--nats", nats.url])
        self.assertEqual(code, 1, err)
        self.assertIn("holds events of a standalone server", err)

        replica = self.start_server("--nats", nats.url, db=os.path.join(self.tmpdir, "r.db"))
        await replica.stop()
        code, _, err = run_serve_once(["--port", "0", "--db", replica.db])
        self.assertEqual(code, 1, err)
        self.assertIn("is a replica of JetStream stream EVSTREAM", err)
        code, _, err = run_serve_once(["--port", "0", "--db", replica.db, "--nats", nats.url,
                                       "--nats-stream", "OTHER"])
        self.assertEqual(code, 1, err)
        self.assertIn("not OTHER", err)

        # A stream of the same name that takes other subjects is someone else's.
        created = jetstream_api(nats.port, "STREAM.CREATE.ORDERS",
                                {"name": "ORDERS", "subjects": ["orders.>"], "storage": "memory"})
        self.assertNotIn("error", created)
        code, _, err = run_serve_once(["--port", "0", "--db", os.path.join(self.tmpdir, "o.db"),
                                       "--nats", nats.url, "--nats-stream", "ORDERS"])
        self.assertEqual(code, 1, err)
        self.assertIn("stream ORDERS exists but does not take subject evstream.ORDERS", err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
