"""evstream loadtest against a real server, scaled down in time: a passing run (PASS table, exit
0), an impossible SLO (exit 1), the --json report's fields and their consistency, server CPU with
--server-pid, the exit statuses for an unreachable server and bad options, and the subscribers'
raw receive path read through a relay that fragments, interleaves pings and cuts frames, and wss://
subscribers (lws' client)."""
import asyncio
import json
import os
import random
import re
import socket
import subprocess
import time
import unittest

from evtest import HOST, RECV_TIMEOUT, ClientTestCase, ServerProcess, async_wait_for, free_port

CLIENTS = 20
RATE = 20
DURATION_S = 2
RUN = ["--clients", str(CLIENTS), "--duration", f"{DURATION_S}s", "--rate", str(RATE)]
# The acceptance checks with a latency bound that holds on a busy test machine (the product's
# 100 ms target is for a quiet one; the JSON test checks the defaults are the ones applied).
RELAXED_SLO = "connected=100%,loss=0,p99<1s,rss_growth<10MB"
DEFAULT_CHECKS = ["connected=100%", "loss=0", "p99<100ms", "rss_growth<10MB"]
# What the receive-path tests check; their relay and the sanitizer builds slow delivery down.
DELIVERY_SLO = "connected=100%,loss=0"


def table_checks(out):
    """{check: (actual, verdict)} from the table's check section."""
    rows = {}
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if re.match(r"^check\s+actual\s+result$", line))
    for line in lines[header + 1:]:
        if not line.strip():
            continue
        match = re.match(r"^(\S+)\s+(.+?)\s+(PASS|FAIL|SKIP)$", line)
        if not match:
            raise AssertionError(f"unexpected table row {line!r} in:\n{out}")
        rows[match[1]] = (match[2], match[3])
    return rows


async def read_frame(reader):
    """The next WebSocket frame as (fin, opcode, masked, payload unmasked, raw bytes); None at
    the end of the stream."""
    try:
        first, second = await reader.readexactly(2)
        raw = bytes([first, second])
        size = second & 0x7F
        if size >= 126:
            extended = await reader.readexactly(2 if size == 126 else 8)
            raw += extended
            size = int.from_bytes(extended, "big")
        key = b""
        if second & 0x80:
            key = await reader.readexactly(4)
            raw += key
        payload = await reader.readexactly(size)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    raw += payload
    if key:
        payload = bytes(byte ^ key[i % 4] for i, byte in enumerate(payload))
    return bool(first & 0x80), first & 0x0F, bool(key), payload, raw


def server_frame(fin, opcode, payload):
    """An unmasked frame, as a server sends it."""
    header = bytes([(0x80 if fin else 0) | opcode])
    if len(payload) < 126:
        header += bytes([len(payload)])
    elif len(payload) <= 0xFFFF:
        header += bytes([126]) + len(payload).to_bytes(2, "big")
    else:
        header += bytes([127]) + len(payload).to_bytes(8, "big")
    return header + payload


class FrameCuttingRelay:
    """A TCP relay in front of the server that reads the WebSocket frames of /ws/events
    connections both ways. Towards the subscriber it splits every event into two fragments with a
    ping of its own between them and writes what it sends in pieces (TCP_NODELAY), so the
    subscriber's reader meets fragments, a control frame between them and frames cut across reads.
    Per subscriber it records the request head, the events passed on, the pings sent and the
    client frames (opcode, masked, payload). Other connections (publisher, HTTP) pass unchanged."""

    def __init__(self, server_port):
        self.server_port = server_port
        self.subscribers = []
        self.random = random.Random(15)

    async def start(self):
        self.server = await asyncio.start_server(self._serve, HOST, 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def close(self):
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader, writer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            up_reader, up_writer = await asyncio.open_connection(HOST, self.server_port)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        up_writer.write(head)
        if not head.startswith(b"GET /ws/events"):
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
            return
        subscriber = {"head": head.decode(), "events": 0, "pings": [], "client_frames": []}
        self.subscribers.append(subscriber)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.gather(self._from_client(reader, up_writer, subscriber),
                             self._to_client(up_reader, writer, subscriber))

    async def _pipe(self, reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        writer.close()

    async def _from_client(self, reader, up_writer, subscriber):
        while (frame := await read_frame(reader)) is not None:
            _, opcode, masked, payload, raw = frame
            subscriber["client_frames"].append((opcode, masked, payload))
            up_writer.write(raw)
        up_writer.close()

    async def _to_client(self, up_reader, writer, subscriber):
        try:
            writer.write(await up_reader.readuntil(b"\r\n\r\n"))  # the 101
            while (frame := await read_frame(up_reader)) is not None:
                fin, opcode, _, payload, raw = frame
                if fin and opcode == 1 and payload.startswith(b'{"type":"event"'):
                    subscriber["events"] += 1
                    ping = f"relay {subscriber['events']}".encode()
                    subscriber["pings"].append(ping)
                    cut = self.random.randrange(1, len(payload))
                    raw = (server_frame(False, 1, payload[:cut]) + server_frame(True, 9, ping) +
                           server_frame(True, 0, payload[cut:]))
                await self._write_in_pieces(writer, raw)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    async def _write_in_pieces(self, writer, data):
        cuts = sorted(self.random.sample(range(1, len(data)), min(3, len(data) - 1)))
        for start, end in zip([0] + cuts, cuts + [len(data)]):
            writer.write(data[start:end])
            await writer.drain()


class LoadtestTest(ClientTestCase):

    async def asyncSetUp(self):
        await super().asyncSetUp()
        # Pings every second, so a two-second run sees some.
        self.server = self.start_server("--ping-interval", "1s")

    def loadtest(self, *args, timeout=30.0):
        return self.cli("loadtest", "--url", self.server.url, *args, timeout=timeout)

    async def test_passing_run_prints_pass_table(self):
        code, out, err = self.loadtest(*RUN, "--slo", RELAXED_SLO)
        self.assertEqual(code, 0, out + err)
        checks = table_checks(out)
        self.assertEqual(list(checks), RELAXED_SLO.split(","))
        self.assertTrue(all(verdict == "PASS" for _, verdict in checks.values()), out)
        self.assertEqual(checks["connected=100%"][0], f"{CLIENTS}/{CLIENTS}")
        self.assertRegex(checks["loss=0"][0], r"^0 of \d+$")
        self.assertRegex(out, rf"(?m)^clients\s+{CLIENTS} connected, 0 lost")
        self.assertRegex(out, r"(?m)^latency\s+p50 \S+\s+p90 \S+\s+p99 \S+\s+p99\.9 \S+\s+max \S+$")
        self.assertRegex(out, r"(?m)^server\s+rss \S+MiB -> \S+MiB")
        self.assertRegex(out, r"(?m)^server\s+delivered within 1ms \S+%, 2ms \S+%, 20ms \S+% of "
                              r"\d+ writes$")
        self.assertNotIn("\r", err, "no live progress when stderr is not a terminal")
        # It opened exactly --clients subscribers.
        self.assertEqual(len(self.server.find_log("connect", path="/ws/events")), CLIENTS)

    async def test_impossible_slo_exits_1(self):
        code, out, err = self.loadtest(*RUN, "--slo", "p99<1us,loss=0")
        self.assertEqual(code, 1, out + err)
        checks = table_checks(out)
        self.assertEqual(checks["p99<1us"][1], "FAIL")
        self.assertEqual(checks["loss=0"][1], "PASS")

    async def test_json_report_consistent(self):
        code, out, err = self.loadtest(*RUN, "--json")
        report = json.loads(out)  # exactly one JSON document on stdout
        for field in ("clients", "connected", "disconnected", "connect_us", "latency_us",
                      "published", "expected", "received", "lost", "loss_ratio", "pings",
                      "publish_seconds", "delivered_per_s", "server_rss_before",
                      "server_rss_after", "server_cpu_percent", "self_cpu_percent",
                      "server_delivery", "slo", "pass"):
            self.assertIn(field, report)
        self.assertNotIn("error", report)
        # The default checks are the acceptance targets; the exit status follows "pass".
        self.assertEqual([c["check"] for c in report["slo"]], DEFAULT_CHECKS)
        self.assertEqual(report["pass"], all(c["pass"] for c in report["slo"]))
        self.assertEqual(code, 0 if report["pass"] else 1, out + err)
        for check in report["slo"]:
            if check["check"] != "p99<100ms":  # the one that depends on the machine's load
                self.assertTrue(check["pass"], check)

        self.assertEqual((report["clients"], report["connected"], report["disconnected"]),
                         (CLIENTS, CLIENTS, 0))
        for name in ("connect_us", "latency_us"):
            h = report[name]
            self.assertGreater(h["count"], 0, name)
            ordered = [h["min"], h["p50"], h["p90"], h["p99"], h["p999"], h["max"]]
            self.assertEqual(ordered, sorted(ordered), f"{name} percentiles not ascending: {h}")
            self.assertGreater(h["min"], 0)
            self.assertLessEqual(h["min"], h["mean"])
            self.assertLessEqual(h["mean"], h["max"])
        self.assertEqual(report["connect_us"]["count"], CLIENTS)

        published = report["published"]
        self.assertGreaterEqual(published, RATE * DURATION_S // 2)
        self.assertLessEqual(published, RATE * DURATION_S + 2)
        self.assertEqual(report["expected"], published * CLIENTS)
        self.assertLessEqual(report["received"], report["expected"])
        self.assertEqual(report["lost"], report["expected"] - report["received"])
        self.assertAlmostEqual(report["loss_ratio"], report["lost"] / report["expected"])
        self.assertEqual(report["latency_us"]["count"], report["received"])
        self.assertAlmostEqual(report["publish_seconds"], DURATION_S, delta=0.5)
        self.assertAlmostEqual(report["delivered_per_s"],
                               report["received"] / report["publish_seconds"], delta=1)
        self.assertGreaterEqual(report["pings"], CLIENTS, "every client gets a ping a second")
        for name in ("server_rss_before", "server_rss_after"):
            self.assertIsInstance(report[name], int)
            self.assertGreater(report[name], 1 << 20, name)
        self.assertIsNone(report["server_cpu_percent"], "only known with --server-pid")
        # The server's own view: one delivery sample per event written to each subscriber.
        delivery = report["server_delivery"]
        self.assertEqual(delivery["count"], report["received"])
        shares = [delivery["within_1ms"], delivery["within_2ms"], delivery["within_20ms"]]
        self.assertEqual(shares, sorted(shares))
        self.assertTrue(all(0 <= s <= 1 for s in shares), shares)
        self.assertGreaterEqual(report["self_cpu_percent"], 0)
        # The server stored what loadtest says it published.
        sub = await self.subscribe(self.server)
        self.assertEqual(sub.last_id, published)

    async def test_server_pid_gives_cpu(self):
        code, out, err = self.loadtest(*RUN, "--json", "--server-pid", str(self.server.pid),
                                       "--slo", RELAXED_SLO)
        self.assertEqual(code, 0, out + err)
        report = json.loads(out)
        self.assertIsInstance(report["server_cpu_percent"], (int, float))
        self.assertGreaterEqual(report["server_cpu_percent"], 0)
        self.assertLess(report["server_cpu_percent"], 100 * (os.cpu_count() or 1))
        # RSS from /proc for that pid: in the same range as the kernel reports now.
        with open(f"/proc/{self.server.pid}/statm") as f:
            rss_now = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        self.assertLess(abs(report["server_rss_after"] - rss_now), 64 << 20)
        self.assertGreater(report["server_rss_after"], 1 << 20)

    async def test_threads_share_the_subscribers(self):
        code, out, err = self.loadtest(*RUN, "--threads", "3", "--json", "--slo", RELAXED_SLO)
        self.assertEqual(code, 0, out + err)
        report = json.loads(out)
        self.assertEqual((report["connected"], report["disconnected"], report["lost"]),
                         (CLIENTS, 0, 0))
        self.assertEqual(report["connect_us"]["count"], CLIENTS)
        self.assertGreater(report["published"], 0)
        self.assertEqual(report["expected"], report["published"] * CLIENTS)
        self.assertEqual(report["received"], report["expected"])
        self.assertEqual(report["latency_us"]["count"], report["received"])
        self.assertGreaterEqual(report["pings"], CLIENTS)
        self.assertEqual(len(self.server.find_log("connect", path="/ws/events")), CLIENTS)
        # Every thread closes its own subscribers with a close frame before loadtest exits.
        await async_wait_for(
            lambda: len(self.server.find_log("disconnect", path="/ws/events",
                                             reason="client closed (1000)")) == CLIENTS,
            RECV_TIMEOUT, what=f"{CLIENTS} normal closes")

    async def test_camera_filters_count_only_matching_events(self):
        code, out, err = self.loadtest("--clients", "12", "--duration", "2s", "--rate", "50",
                                       "--cameras", "5", "--where-cameras", "2", "--json",
                                       "--slo", RELAXED_SLO)
        self.assertEqual(code, 0, out + err)
        report = json.loads(out)
        published = report["published"]
        self.assertGreater(published, 0)
        # Each subscriber's server-side filter holds 2 of the 5 cameras the events go round.
        self.assertEqual(report["received"], report["expected"])
        self.assertEqual(report["lost"], 0)
        self.assertLess(abs(report["expected"] - published * 12 * 2 / 5), 12 * 2)
        code, _, err = self.loadtest("--cameras", "2", "--where-cameras", "3")
        self.assertEqual(code, 2)
        self.assertEqual(err.strip(),
                         "evstream: error: --where-cameras 3 needs at least that many --cameras "
                         "(have 2)")

    async def test_unreachable_and_usage_errors(self):
        url = f"ws://127.0.0.1:{free_port()}"
        started = time.monotonic()
        code, out, err = self.cli("loadtest", "--url", url, "--clients", "2", "--duration", "1s",
                                  timeout=20)
        self.assertEqual(code, 69, out + err)
        self.assertLess(time.monotonic() - started, 10)
        self.assertRegex(err, r"evstream: error: cannot reach")
        for args in (["--slo", "p99~5ms"], ["--duration", "soon"], ["--clients", "0"],
                     ["--threads", "0"], ["--no-such-flag"]):
            code, out, err = self.loadtest(*args)
            self.assertEqual(code, 2, (args, err))
            self.assertTrue(err.startswith("evstream: error: "), err)
        self.assertEqual(len(self.server.find_log("connect", path="/ws/events")), 0)


class RawReceiveTest(ClientTestCase):
    """The subscribers' own upgrade and frame reader (not lws' WebSocket client) on a stream a
    relay made hard: fragments, pings between them, frames cut anywhere, 16- and 64-bit lengths;
    and wss://, where the subscribers keep lws' client."""

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.server = self.start_server("--ping-interval", "1s")
        self.relay = await FrameCuttingRelay(self.server.port).start()
        self.addAsyncCleanup(self.relay.close)

    async def test_every_event_through_fragments_pings_and_cut_frames(self):
        clients = 8
        for size in ("300B", "70KiB"):  # event frames with 16-bit and with 64-bit lengths
            with self.subTest(size=size):
                self.relay.subscribers.clear()
                child = self.spawn("loadtest", "--url", f"ws://{HOST}:{self.relay.port}",
                                   "--clients", str(clients), "--duration", "2s", "--rate", "10",
                                   "--size", size, "--json", "--slo", DELIVERY_SLO)
                code = await child.wait_exit(timeout=60)
                report = json.loads("\n".join(child.lines))
                self.assertEqual(code, 0, (report, child.stderr_text()))
                published = report["published"]
                self.assertGreater(published, 0)
                self.assertEqual((report["connected"], report["disconnected"], report["lost"]),
                                 (clients, 0, 0))
                self.assertEqual(report["received"], published * clients)
                self.assertEqual(len(self.relay.subscribers), clients)
                for subscriber in self.relay.subscribers:
                    head = subscriber["head"]
                    # Our handshake, not lws': its User-Agent, version 13, no subprotocol.
                    self.assertRegex(head, r"^GET /ws/events HTTP/1\.1\r\n")
                    self.assertIn("\r\nUser-Agent: evstream-loadtest/", head)
                    self.assertIn("\r\nSec-WebSocket-Version: 13\r\n", head)
                    self.assertNotIn("Sec-WebSocket-Protocol", head)
                    self.assertEqual(subscriber["events"], published)
                    frames = subscriber["client_frames"]
                    self.assertTrue(all(masked for _, masked, _ in frames), "unmasked client frame")
                    # Every relay ping answered, in order, with its payload.
                    self.assertEqual([p for op, _, p in frames if op == 0xA], subscriber["pings"])
                    self.assertIn((0x1, True, b'{"type":"pong"}'), frames)  # the JSON pings
                    # The end: a normal close, nothing after it.
                    self.assertEqual(frames[-1], (0x8, True, (1000).to_bytes(2, "big")))

    async def test_wss_subscribers_use_lws_client(self):
        # lws 4.1 cannot run a raw client connection over TLS: wss:// keeps lws' WebSocket client.
        cert, key = (os.path.join(self.tmpdir, name) for name in ("cert.pem", "key.pem"))
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                        "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1"],
                       check=True, capture_output=True, timeout=60)
        server = ServerProcess(self.tmpdir, ["--cert", cert, "--key", key], name="tls")
        self.servers.append(server)
        server.start()
        self.assertTrue(server.url.startswith("wss://"))
        clients = 5
        code, out, err = self.cli("loadtest", "--url", server.url, "--clients", str(clients),
                                  "--duration", "1s", "--rate", "10", "--json", "--slo",
                                  DELIVERY_SLO, env={"EVSTREAM_INSECURE": "1"}, timeout=60)
        report = json.loads(out)
        self.assertEqual(code, 0, (report, err))
        self.assertEqual((report["connected"], report["lost"]), (clients, 0))
        self.assertEqual(report["received"], report["published"] * clients)


if __name__ == "__main__":
    unittest.main()
