"""Clients with several servers (`--url A,B`, the flag repeated, or EVSTREAM_URL=A,B) fail over in
order and resume by id: tail and publish skip a dead server at startup; across a kill -9 of server A
and a server B started on the same database file (so ids continue, as nodes of a cluster serve the
same ids), publish has every line acked and stored exactly once and tail prints every id once, in
order, without a gap. Also: one failover line per move on stderr, exit 69 only when no server of
the list answers for --retry-timeout, a bad item in the list is a usage error naming it, replay
(--url and --to) and loadtest take lists."""
import json
import re
import signal
import subprocess
import time
import unittest

from evtest import RECV_TIMEOUT, ClientTestCase, free_port

SUMMARY = re.compile(r"^evstream publish: published (\d+) events?(?: \(ids? (\d+)(?:-(\d+))?\))?"
                     r"(?:, (\d+) already stored)?, (\d+) rejected$", re.M)


def dead_url():
    """A ws:// URL on a loopback port nobody listens on."""
    return f"ws://127.0.0.1:{free_port()}"


class FailoverTest(ClientTestCase):

    async def publish_n(self, server, start, count):
        return await self.publish_many(server, [{"seq": i} for i in range(start, start + count)])

    def records(self, lines):
        return [json.loads(line) for line in lines]

    # -- a dead server first in the list -----------------------------------------------------

    async def test_tail_skips_a_dead_server(self):
        live = self.start_server()
        await self.publish_n(live, 0, 3)
        dead = dead_url()
        for how, args, env in (("comma list", ["--url", f"{dead},{live.url}"], None),
                               ("repeated flag", ["--url", dead, "--url", live.url], None),
                               ("EVSTREAM_URL", [], {"EVSTREAM_URL": f"{dead},{live.url}"})):
            with self.subTest(how=how):
                code, out, err = self.cli("tail", *args, "--since", "0", "--count", "3",
                                          env=env, timeout=20)
                self.assertEqual(code, 0, err)
                self.assertEqual([r["data"]["seq"] for r in self.records(out.splitlines())],
                                 [0, 1, 2])
                # One line naming the server left and the one tried next.
                self.assertRegex(err, re.escape(dead) + r"/ws/events: .*; failing over to " +
                                 re.escape(live.url) + r"/ws/events\n")
                self.assertIn(f"evstream tail: reconnected to {live.url}/ws/events", err)

    async def test_publish_skips_a_dead_server(self):
        live = self.start_server()
        code, _, err = self.cli("publish", "--url", f"{dead_url()},{live.url}", '{"a":1}',
                                '{"a":2}', timeout=20)
        self.assertEqual(code, 0, err)
        self.assertIn("published 2 events (ids 1-2), 0 rejected", err)
        self.assertIn(f"failing over to {live.url}/ws/publish", err)
        self.assertEqual([r["data"] for r in await self.stored(live)], [{"a": 1}, {"a": 2}])

    # -- kill -9 of A, B on the same database ------------------------------------------------

    async def test_publish_across_a_dead_node(self):
        total = 3000
        lines = [json.dumps({"seq": i}) for i in range(total)]
        a = self.start_server(name="a")
        port_b = free_port()
        url_b = f"ws://127.0.0.1:{port_b}"
        watcher = await self.subscribe(a)
        child = self.spawn("publish", "--url", f"{a.url},{url_b}", "--retry-timeout", "30s",
                           stdin=subprocess.PIPE)
        child.write("\n".join(lines[:total // 2]) + "\n")
        await watcher.events(1, timeout=10)  # publishing is under way: kill -9 A now
        a.kill()
        child.write("\n".join(lines[total // 2:]) + "\n")  # more input while no server is up
        await child.wait_stderr(re.escape(a.url) + r"/ws/publish: .*; failing over to " +
                                re.escape(url_b) + r"/ws/publish", timeout=10)
        b = self.start_server_on(port_b, db=a.db, name="b")
        child.close_stdin()
        self.assertEqual(await child.wait_exit(timeout=30), 0, child.stderr_text())
        found = SUMMARY.findall(child.stderr_text())
        self.assertEqual(len(found), 1, child.stderr_text())
        self.assertEqual((int(found[0][0]), int(found[0][4])), (total, 0), "all acked, none lost")
        records = await self.stored(b, timeout=20)
        seqs = [r["data"]["seq"] for r in records]
        self.assertEqual(sorted(seqs), list(range(total)), "each line stored exactly once")
        self.assertEqual(seqs, list(range(total)), "stored in input order")
        self.assertContiguous([r["id"] for r in records], 1, total)

    async def test_tail_across_a_dead_node(self):
        total = 1000
        a = self.start_server(name="a")
        port_b = free_port()
        url_b = f"ws://127.0.0.1:{port_b}"
        servers = ["--url", a.url, "--url", url_b]
        child = self.spawn("tail", *servers, "--since", "0")
        # The feed fails over too: events are flowing when A dies.
        feed = self.spawn("publish", *servers, "--retry-timeout", "30s", stdin=subprocess.PIPE)
        feed.write("".join(json.dumps({"seq": i}) + "\n" for i in range(total // 2)))
        await child.wait_lines(1, timeout=10)
        a.kill()
        # B is not up yet: tail goes round the list (A, B, A, ...) until it is.
        await child.wait_stderr(re.escape(a.url) + r"/ws/events: .*; failing over to " +
                                re.escape(url_b) + r"/ws/events", timeout=10)
        feed.write("".join(json.dumps({"seq": i}) + "\n" for i in range(total // 2, total)))
        b = self.start_server_on(port_b, db=a.db, name="b")
        feed.close_stdin()
        self.assertEqual(await feed.wait_exit(timeout=30), 0, feed.stderr_text())
        lines = await child.wait_lines(total, timeout=15)
        records = self.records(lines)
        self.assertContiguous([r["id"] for r in records], 1, total)
        self.assertEqual(sorted(r["data"]["seq"] for r in records), list(range(total)))
        await child.wait_stderr(r"evstream tail: reconnected to " + re.escape(url_b))
        # Nothing more comes after the last one (no replayed duplicates), and Ctrl-C ends it.
        await self.publish_n(b, total, 1)
        await child.wait_lines(total + 1)
        self.assertEqual(json.loads(child.lines[-1])["id"], total + 1)
        child.send_signal(signal.SIGINT)
        self.assertEqual(await child.wait_exit(), 0, child.stderr_text())
        self.assertEqual(len(child.lines), total + 1)

    # -- giving up, usage errors --------------------------------------------------------------

    async def test_unreachable_list_exits_69_naming_every_server(self):
        one, two = dead_url(), dead_url()
        for sub in ("publish", "tail"):
            with self.subTest(sub=sub):
                started = time.monotonic()
                args = ['{"a":1}'] if sub == "publish" else []
                code, out, err = self.cli(sub, "--url", f"{one},{two}", "--retry-timeout", "1s",
                                          *args, timeout=20)
                self.assertEqual((code, out), (69, ""), err)
                self.assertLess(time.monotonic() - started, 5.0)
                self.assertRegex(err, r"evstream: error: cannot reach " + re.escape(one) +
                                 r"\S*, " + re.escape(two))
                # It went round the list, both ways, before giving up.
                self.assertIn(f"failing over to {two}", err)
                self.assertIn(f"failing over to {one}", err)

    async def test_bad_item_is_a_usage_error(self):
        server = self.start_server()
        cases = [
            ["publish", "--url", f"{server.url},ftp://x", '{"a":1}'],
            ["publish", "--url", server.url, "--url", "ws://h:99999", '{"a":1}'],
            ["tail", "--url", f"{server.url},,{server.url}"],
            ["loadtest", "--url", f"{server.url},ftp://x", "--clients", "1"],
            ["replay", "--db", server.db, "--to", f"{server.url},ftp://x"],
            ["replay", "--url", f"{server.url},ftp://x"],
        ]
        for args in cases:
            with self.subTest(args=args):
                code, out, err = self.cli(*args, timeout=20)
                self.assertEqual((code, out), (2, ""), err)
                self.assertRegex(err, r"^evstream: error: invalid URL")
                self.assertTrue("ftp://x" in err or "99999" in err or "empty item" in err, err)
        self.assertEqual(await self.stored(server), [])

    # -- replay and loadtest ------------------------------------------------------------------

    async def test_replay_url_and_to_lists(self):
        source = self.start_server(name="source")
        await self.publish_n(source, 0, 5)
        code, out, err = self.cli("replay", "--url", f"{dead_url()},{source.url}", timeout=20)
        self.assertEqual(code, 0, err)
        self.assertEqual([r["data"]["seq"] for r in self.records(out.splitlines())],
                         list(range(5)))
        self.assertIn(f"failing over to {source.url.replace('ws://', 'http://')}", err)
        target = self.start_server(db=f"{self.tmpdir}/target.db", name="target")
        code, _, err = self.cli("replay", "--db", source.db, "--to", f"{dead_url()},{target.url}",
                                timeout=20)
        self.assertEqual(code, 0, err)
        self.assertIn("published 5 events (ids 1-5), 0 rejected", err)
        self.assertEqual([r["data"]["seq"] for r in await self.stored(target)], list(range(5)))

    async def test_loadtest_spreads_subscribers(self):
        server = self.start_server()
        # The same server twice: subscribers go round-robin over the list, all of them here.
        code, out, err = self.cli("loadtest", "--url", f"{server.url},{server.url}", "--clients",
                                  "4", "--duration", "1s", "--rate", "20", "--json", "--slo",
                                  "connected=100%,loss=0", timeout=30)
        self.assertEqual(code, 0, out + err)
        report = json.loads(out)
        self.assertEqual((report["connected"], report["lost"]), (4, 0))
        self.assertEqual(len(server.find_log("connect", path="/ws/events")), 4)


if __name__ == "__main__":
    unittest.main()
