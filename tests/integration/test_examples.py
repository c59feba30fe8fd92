"""Smoke tests of examples/ and of `make install` / `make uninstall`: every runnable example is run.

- detector.py: its events, pacing, seeds and a closed stdout; piped into `evstream publish`.
- client.py: receives events, answers pings, resumes with since= across a server restart.
- pipelines.sh: every recipe that needs no outside host (staging is a second local server), and
  `demo` (what `make demo` runs) stopped with SIGINT as Ctrl-C would.
- browser-console.js: `node --check`, then run under node against a scripted WebSocket.
- evstream.service: `systemd-analyze verify` (no warnings) and `security --offline` (rated OK).
- make install / uninstall into a temporary DESTDIR (no build is triggered).

Needs node, jq, systemd-analyze and man (nodejs, jq, systemd and man-db in the Makefile PACKAGES;
`make deps` installs them): a missing tool is a failure with a clear message, never a silent skip.
Servers listen on 127.0.0.1 only, every wait is bounded.
"""
import filecmp
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import unittest
import urllib.request

from evtest import (HOST, RECV_TIMEOUT, ChildProcess, ClientTestCase, async_wait_for, client_env,
                    evstream_bin, free_port, require_tool)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
EXAMPLES = os.path.join(ROOT, "examples")
DETECTOR = os.path.join(EXAMPLES, "detector.py")
CLIENT = os.path.join(EXAMPLES, "client.py")
PIPELINES = os.path.join(EXAMPLES, "pipelines.sh")
CLUSTER = os.path.join(EXAMPLES, "cluster.sh")
BROWSER_JS = os.path.join(EXAMPLES, "browser-console.js")
UNIT = os.path.join(EXAMPLES, "evstream.service")
PYTHON = "/usr/bin/python3"
TIMEOUT = 60  # seconds for any one command run to completion
FRAME_W, FRAME_H = 1920, 1080

# Runs argv with SIGINT at its default action: a test runner started in the background of a
# script inherits SIGINT ignored, and a shell cannot trap a signal ignored on entry.
SIGINT_DEFAULT = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                  "os.execvp(sys.argv[1], sys.argv[1:])")




def run(argv, env=None, input=None, cwd=None, timeout=TIMEOUT):
    """Runs argv to completion (bounded): the CompletedProcess, text mode."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input,
                          stdin=None if input is not None else subprocess.DEVNULL, cwd=cwd,
                          env=env)


def make_env():
    """The environment for a child `make`: none of an outer make's jobserver settings."""
    env = client_env()
    for name in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"):
        env.pop(name, None)
    return env


def detector_lines(*args):
    result = run([PYTHON, DETECTOR, *args])
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


class Child(ChildProcess):
    """A script or make child (see ChildProcess). With new_session the group it leads is this
    test's, so a signal can go to it and every process it started, as Ctrl-C would."""

    def __init__(self, workdir, name, argv, env, new_session=False):
        super().__init__(workdir, name, argv, env, label=os.path.basename(argv[1]),
                         new_session=new_session)

    def group_alive(self):
        try:
            os.killpg(self.proc.pid, 0)
            return True
        except ProcessLookupError:
            return False

    def kill(self):
        if self.proc.poll() is None:
            if self.new_session:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)  # the group this test created
                except ProcessLookupError:
                    pass
            else:
                self.proc.kill()
        self.proc.wait(timeout=10)


def http_get(port, path, timeout=5):
    with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=timeout) as response:
        return response.status, response.read().decode()


def port_refuses(port):
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((HOST, port)) != 0


# ---------------------------------------------------------------------------------------------
# detector.py on its own

class DetectorTest(unittest.TestCase):
    def test_events_have_the_documented_fields(self):
        events = detector_lines("--count", "60", "--rate", "0", "--cameras", "3", "--seed", "7")
        self.assertEqual(len(events), 60)
        self.assertEqual({e["camera_id"] for e in events}, {"cam-1", "cam-2", "cam-3"})
        self.assertEqual(len({e["detection_id"] for e in events}), 60, "detection ids repeat")
        labels = set()
        for e in events:
            with self.subTest(event=e["detection_id"]):
                self.assertRegex(e["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
                self.assertTrue(e["objects"], e)
                for obj in e["objects"]:
                    labels.add(obj["label"])
                    self.assertIsInstance(obj["label"], str)
                    self.assertTrue(0 < obj["confidence"] < 1, obj)
                    x, y, w, h = obj["bbox"]
                    self.assertTrue(all(isinstance(v, int) for v in obj["bbox"]), obj)
                    self.assertTrue(w > 0 and h > 0 and x >= 0 and y >= 0, obj)
                    self.assertTrue(x + w <= FRAME_W and y + h <= FRAME_H, obj)
                self.assertEqual(e["confidence"], max(o["confidence"] for o in e["objects"]))
                self.assertTrue(e["description"].endswith(f"({e['camera_id']})."), e)
                self.assertTrue(e["description"][0].isupper() or e["description"][0].isdigit(), e)
                for key in ("image_path", "thumbnail_path"):
                    self.assertTrue(e[key].startswith("/var/lib/detector/"), e[key])
                    self.assertIn(f"/{e['camera_id']}/", e[key])
                    self.assertTrue(e[key].endswith(".jpg"), e[key])
                self.assertNotEqual(e["image_path"], e["thumbnail_path"])
        self.assertGreater(len(labels), 4, labels)

    def test_a_seed_repeats_the_events(self):
        def stable(events):
            return [{k: v for k, v in e.items()
                     if k not in ("timestamp", "image_path", "thumbnail_path")} for e in events]

        first = detector_lines("--count", "20", "--rate", "0", "--seed", "42")
        again = detector_lines("--count", "20", "--rate", "0", "--seed", "42")
        other = detector_lines("--count", "20", "--rate", "0", "--seed", "43")
        self.assertEqual(stable(first), stable(again))
        self.assertNotEqual(stable(first), stable(other))

    def test_rate_paces_and_each_line_is_flushed(self):
        start = time.monotonic()
        proc = subprocess.Popen([PYTHON, DETECTOR, "--rate", "2", "--count", "3"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            first = proc.stdout.readline()  # flushed at once: not held until the end
            self.assertIsNone(proc.poll(), "the first line arrived only at exit")
            json.loads(first)
            rest, err = proc.communicate(timeout=TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        elapsed = time.monotonic() - start
        self.assertEqual(proc.returncode, 0, err)
        self.assertEqual(len(rest.splitlines()), 2)
        self.assertGreaterEqual(elapsed, 0.95, "3 events at 2/s take at least 1 s")

    def test_a_closed_stdout_ends_it_quietly(self):
        proc = subprocess.Popen([PYTHON, DETECTOR, "--rate", "0"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            json.loads(proc.stdout.readline())
            proc.stdout.close()
            _, err = proc.communicate(timeout=TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        self.assertEqual(proc.returncode, 0, err)
        self.assertEqual(err, b"")

    def test_usage_errors(self):
        result = run([PYTHON, DETECTOR, "--cameras", "0"])
        self.assertEqual(result.returncode, 2)
        self.assertIn("--cameras: must be at least 1", result.stderr)
        result = run([PYTHON, DETECTOR, "--help"])
        self.assertEqual(result.returncode, 0)
        for option in ("--rate", "--count", "--cameras", "--seed"):
            self.assertIn(option, result.stdout)


# ---------------------------------------------------------------------------------------------
# Examples against real servers

class ExamplesWithServerTest(ClientTestCase):
    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.extra_children = []
        self.addAsyncCleanup(self._kill_extra)

    async def _kill_extra(self):
        for child in self.extra_children:
            child.kill()

    def child(self, name, argv, env=None, new_session=False):
        child = Child(self.tmpdir, name, argv, env or client_env(), new_session=new_session)
        self.extra_children.append(child)
        return child

    def pipeline_env(self, server, **extra):
        env = client_env({"EVSTREAM": evstream_bin(), "EVSTREAM_URL": server.url})
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def recipe(self, name, *args, env, timeout=TIMEOUT):
        result = run(["bash", PIPELINES, name, *args], env=env, timeout=timeout)
        self.assertEqual(result.returncode, 0,
                         f"pipelines.sh {name} exited {result.returncode}: {result.stderr[-1500:]}")
        return result

    async def test_detector_into_publish_stores_every_event(self):
        require_tool("bash")
        server = self.start_server()
        script = (f"{PYTHON} {DETECTOR} --count 25 --rate 0 --cameras 4 --seed 11 | "
                  f"{evstream_bin()} publish --url {server.url} --key-field detection_id")
        result = run(["bash", "-o", "pipefail", "-c", script], env=client_env())
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("published 25 events", result.stderr)
        stored = await self.stored(server)
        self.assertEqual([r["id"] for r in stored], list(range(1, 26)))
        for record in stored:
            data = record["data"]
            self.assertEqual(record["topic"], "events")
            for key in ("camera_id", "timestamp", "objects", "confidence", "description",
                        "image_path", "thumbnail_path"):
                self.assertIn(key, data)
            self.assertIn("bbox", data["objects"][0])

        # The same seed again: every detection_id is known, so nothing is stored twice.
        result = run(["bash", "-o", "pipefail", "-c", script], env=client_env())
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("25 already stored", result.stderr)
        self.assertEqual(len(await self.stored(server)), 25)

    async def test_client_py_answers_pings_and_resumes_after_a_restart(self):
        port = free_port()
        server = self.start_server_on(port, "--ping-interval", "200ms")
        await self.publish_many(server, [{"n": 1}, {"n": 2}])
        client = self.child("client", [PYTHON, CLIENT, "--url", server.url, "--since", "0",
                                       "--count", "6", "--timeout", "60", "-v"])
        await async_wait_for(lambda: len(client.lines) >= 2, RECV_TIMEOUT,
                             what=f"2 records from client.py; stderr {client.stderr_text()!r}")
        # Three pings answered take > 2 x --ping-interval: a client that did not answer them
        # would have been closed as dead by now.
        await async_wait_for(lambda: client.stderr_text().count("ping answered") >= 3,
                             RECV_TIMEOUT, what="client.py to answer 3 pings")
        self.assertEqual(client.stderr_text().count("connected: "), 1, client.stderr_text())
        self.assertFalse([r for r in server.find_log("disconnect")
                          if r.fields.get("reason", "").startswith("dead")], server.log_text())
        await self.publish_many(server, [{"n": 3}])
        await async_wait_for(lambda: len(client.lines) >= 3, RECV_TIMEOUT, what="record 3")

        self.assertEqual(await server.stop(), 0)
        await async_wait_for(lambda: "reconnecting" in client.stderr_text(), RECV_TIMEOUT,
                             what="client.py to notice the lost server")
        restarted = self.start_server_on(port, "--ping-interval", "200ms", db=server.db)
        await self.publish_many(restarted, [{"n": 4}, {"n": 5}, {"n": 6}])
        self.assertEqual(await client.wait_exit(30), 0, client.stderr_text())
        records = [json.loads(line) for line in client.lines]
        self.assertEqual([r["id"] for r in records], [1, 2, 3, 4, 5, 6])
        self.assertEqual([r["data"]["n"] for r in records], [1, 2, 3, 4, 5, 6])
        self.assertTrue(all(r["type"] == "event" for r in records))
        self.assertRegex(client.stderr_text(), r"connecting to ws://[^ ]*/ws/events\?since=3\n")

    async def test_client_py_timeout(self):
        server = self.start_server()
        client = self.child("client", [PYTHON, CLIENT, "--url", server.url, "--count", "1",
                                       "--timeout", "0.5"])
        self.assertEqual(await client.wait_exit(15), 1)
        self.assertIn("--timeout 0.5s passed after 0 events", client.stderr_text())

    async def test_pipeline_recipes(self):
        require_tool("jq")
        server = self.start_server()
        staging = self.start_server(name="staging", db=os.path.join(self.tmpdir, "staging.db"))
        env = self.pipeline_env(server, STAGING_URL=staging.url, DB=server.db, COUNT=30, RATE=0,
                                CAMERAS=3, SEED=5)

        result = self.recipe("detect", env=env)
        self.assertIn("published 30 events", result.stderr)
        stored = await self.stored(server)
        self.assertEqual(len(stored), 30)
        datas = [r["data"] for r in stored]

        lines = self.recipe("watch_format", "--since", "0", "--count", "30", env=env).stdout
        expected = [f"{r['id']} {r['time']} {r['data']['camera_id']} {r['data']['description']}"
                    for r in stored]
        self.assertEqual(lines.splitlines(), expected)

        lines = self.recipe("watch_live", "--since", "0", "--count", "30", env=env).stdout
        self.assertEqual([json.loads(line)["id"] for line in lines.splitlines()],
                         list(range(1, 31)))

        lines = self.recipe("watch_labels", "--since", "0", "--count", "30", env=env).stdout
        expected = [f"{r['id']}\t{r['data']['camera_id']}\t"
                    + ",".join(o["label"] for o in r["data"]["objects"]) for r in stored]
        self.assertEqual(lines.splitlines(), expected)

        lines = self.recipe("watch_people", "--since", "0", "--count", "30", env=env).stdout
        people = [d for d in datas
                  if any(o["label"] == "person" and o["confidence"] >= 0.9 for o in d["objects"])]
        self.assertTrue(people, "seed 5 should give confident person detections")
        self.assertEqual([json.loads(line) for line in lines.splitlines()], people)

        # alerts: confident detections republished to the topic `alerts`.
        confident = [r for r in stored if r["data"]["confidence"] >= 0.9]
        self.assertTrue(confident, "seed 5 should give confident detections")
        self.recipe("alerts", "--since", "0", "--count", "30", env=env)
        alerts = [r for r in await self.stored(server) if r["topic"] == "alerts"]
        self.assertEqual([a["data"]["source_id"] for a in alerts], [r["id"] for r in confident])
        self.assertEqual([a["data"]["detection_id"] for a in alerts],
                         [r["data"]["detection_id"] for r in confident])
        total = 30 + len(alerts)

        summary = json.loads(self.recipe("per_camera", env=env).stdout)
        cameras = sorted({r["data"]["camera_id"] for r in stored})
        self.assertEqual([s["camera"] for s in summary], cameras)
        self.assertEqual(sum(s["events"] for s in summary), total)

        # "Staging" is a second local server.
        self.recipe("replay_to_staging", env=env)
        copied = await self.stored(staging)
        self.assertEqual([(r["topic"], r["data"]) for r in copied],
                         [(r["topic"], r["data"]) for r in await self.stored(server)])

        self.recipe("copy_topic", env=env)
        copied_again = await self.stored(staging)
        self.assertEqual(len(copied_again), total + len(alerts))
        self.assertEqual([r["data"] for r in copied_again[total:]], [a["data"] for a in alerts])
        self.assertTrue(all(r["topic"] == "alerts" for r in copied_again[total:]))

        result = self.recipe("loadtest", "--rate", "20", "--slo", "connected=100%,loss=0",
                             env=dict(env, CLIENTS="5", DURATION="1s"))
        self.assertRegex(result.stdout, r"connected=100%\s+5/5\s+PASS")
        self.assertRegex(result.stdout, r"loss=0\s+.*PASS")

    async def test_pipelines_list_and_unknown_recipe(self):
        result = run(["bash", PIPELINES], env=client_env())
        self.assertEqual(result.returncode, 0, result.stderr)
        for name in ("detect", "watch_format", "watch_labels", "alerts", "per_camera",
                     "replay_to_staging", "copy_topic", "loadtest", "demo"):
            self.assertRegex(result.stdout, rf"(?m)^  {name}$")
        result = run(["bash", PIPELINES, "no_such_recipe"], env=client_env())
        self.assertEqual(result.returncode, 2)
        self.assertIn("no recipe named 'no_such_recipe'", result.stderr)
        result = run(["bash", PIPELINES, "detect"],
                     env=client_env({"EVSTREAM": os.path.join(self.tmpdir, "missing")}))
        self.assertEqual(result.returncode, 1)
        self.assertIn("no evstream binary at", result.stderr)

    async def test_demo_serves_the_dashboard_and_stops_on_ctrl_c(self):
        port = free_port()
        env = client_env({"EVSTREAM": evstream_bin(), "PORT": str(port), "RATE": "50",
                          "TMPDIR": self.tmpdir})
        demo = self.child("demo", [PYTHON, "-c", SIGINT_DEFAULT, "bash", PIPELINES, "demo"],
                          env=env, new_session=True)
        url_line = f"demo: dashboard http://127.0.0.1:{port}/ (Ctrl-C stops)"
        await async_wait_for(lambda: url_line in demo.lines, 15,
                             what=f"the dashboard URL; stdout {demo.lines}, "
                                  f"stderr {demo.stderr_text()!r}")
        dbdir = re.search(r"database (\S+)/demo\.db", "\n".join(demo.lines)).group(1)
        self.assertTrue(os.path.isdir(dbdir))
        status, page = http_get(port, "/")
        self.assertEqual(status, 200)
        self.assertIn("<html", page.lower())

        def newest_id():
            _, body = http_get(port, "/api/events?limit=1&order=desc")
            events = json.loads(body)["events"]
            return events[0]["id"] if events else 0

        await async_wait_for(lambda: newest_id() >= 5, 15, interval=0.05,
                             what="the demo detector to publish 5 events")
        _, body = http_get(port, "/api/events?limit=1&order=desc")
        self.assertIn("camera_id", json.loads(body)["events"][0]["data"])

        os.killpg(demo.proc.pid, signal.SIGINT)  # Ctrl-C: the whole group this test started
        self.assertEqual(await demo.wait_exit(15), 0, demo.stderr_text())
        self.assertIn("demo: stopped", demo.lines)
        self.assertFalse(os.path.exists(dbdir), "the demo database was not removed")
        self.assertTrue(port_refuses(port), "the demo server still listens")
        await async_wait_for(lambda: not demo.group_alive(), 10,
                             what="every process of the demo to end")


    async def test_cluster_script_starts_three_nodes_that_share_events_and_stops_on_ctrl_c(self):
        ports = [free_port() for _ in range(9)]
        env = client_env({"EVSTREAM": evstream_bin(), "TMPDIR": self.tmpdir,
                          "PORTS": " ".join(map(str, ports[:3])),
                          "NATS_PORTS": " ".join(map(str, ports[3:6])),
                          "ROUTE_PORTS": " ".join(map(str, ports[6:]))})
        cluster = self.child("cluster", [PYTHON, "-c", SIGINT_DEFAULT, "bash", CLUSTER],
                             env=env, new_session=True)
        await async_wait_for(lambda: any("Ctrl-C stops" in line for line in cluster.lines), 60,
                             interval=0.1, what=f"the cluster to start; stdout {cluster.lines}, "
                                                f"stderr {cluster.stderr_text()!r}")
        for i, port in enumerate(ports[:3]):
            self.assertIn(f"cluster: node{i + 1} ws://127.0.0.1:{port}", "\n".join(cluster.lines))
        request = urllib.request.Request(f"http://127.0.0.1:{ports[0]}/api/events",
                                         data=b'{"camera_id":"cam-1"}', method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            self.assertEqual(json.loads(response.read()), {"id": 1})

        def on_node3():
            _, body = http_get(ports[2], "/api/events?limit=1")
            return json.loads(body)["events"]

        events = await async_wait_for(on_node3, 10, interval=0.05, what="the event on node 3")
        self.assertEqual((events[0]["id"], events[0]["data"]), (1, {"camera_id": "cam-1"}))
        _, health = http_get(ports[1], "/api/health")
        self.assertEqual(json.loads(health)["nats"]["replicas"], 3)
        os.killpg(cluster.proc.pid, signal.SIGINT)
        self.assertEqual(await cluster.wait_exit(20), 0, cluster.stderr_text())
        self.assertIn("cluster: stopped", cluster.lines)
        for port in ports[:6]:
            self.assertTrue(port_refuses(port), f"port {port} still listens")
        self.assertEqual([d for d in os.listdir(self.tmpdir) if d.startswith("evstream-cluster")],
                         [], "the data directory was not removed")
        await async_wait_for(lambda: not cluster.group_alive(), 10,
                             what="every process of the cluster to end")


# ---------------------------------------------------------------------------------------------
# browser-console.js under node, with a scripted WebSocket

NODE_HARNESS = r"""
const fs = require("fs");
const vm = require("vm");
const source = fs.readFileSync(process.env.SNIPPET, "utf8");
const sockets = [];
const timers = [];
const logs = [];
class FakeWebSocket {
  constructor(url) { this.url = url; this.sent = []; this.closed = null; sockets.push(this); }
  send(text) { this.sent.push(JSON.parse(text)); }
  close(code, reason) { this.closed = [code, reason]; }
}
const context = {
  location: { protocol: "http:", origin: "http://127.0.0.1:8000", search: "?token=s3cret" },
  URLSearchParams, JSON, Math, String,
  WebSocket: FakeWebSocket,
  setTimeout: (fn, ms) => { timers.push({ fn, ms }); return timers.length; },
  clearTimeout: () => {},
  console: {
    log: (...a) => logs.push(a.map(String).join(" ")),
    warn: (...a) => logs.push(a.map(String).join(" ")),
  },
};
context.globalThis = context;
vm.runInNewContext(source, context);
const deliver = (ws, msg) => ws.onmessage({ data: JSON.stringify(msg) });
const event = (id) => ({ type: "event", id, topic: "events", time: "2026-11-25T17:00:00Z",
  data: { camera_id: "cam-1", objects: [{ label: "person", confidence: 0.9 }] } });

const first = sockets[0];
first.onopen();
deliver(first, { type: "ping", timestamp: "t0", connection_id: "1", last_id: 40 });
deliver(first, event(41));
deliver(first, event(42));
deliver(first, { type: "ping", timestamp: "t1" });
deliver(first, event(42));  // a duplicate is not logged
first.onclose({ code: 1006, reason: "" });
timers.shift().fn();  // the reconnect timer fires
const second = sockets[1];
deliver(second, { type: "ping", timestamp: "t2", connection_id: "2", last_id: 45 });
deliver(second, event(43));
context.evstreamStop();
process.stdout.write(JSON.stringify({
  urls: sockets.map((s) => s.url),
  sent: sockets.map((s) => s.sent),
  closed: second.closed,
  pending_timers: timers.length,
  logs,
}));
"""


class BrowserConsoleTest(unittest.TestCase):
    def setUp(self):
        self.node = require_tool("node")

    def test_syntax(self):
        result = run([self.node, "--check", BROWSER_JS])
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_pongs_logs_and_resumes_with_since(self):
        result = run([self.node, "-e", NODE_HARNESS], env=dict(client_env(), SNIPPET=BROWSER_JS))
        self.assertEqual(result.returncode, 0, result.stderr)
        out = json.loads(result.stdout)
        self.assertEqual(out["urls"], [
            "ws://127.0.0.1:8000/ws/events?last=10&token=s3cret",
            "ws://127.0.0.1:8000/ws/events?since=42&token=s3cret",
        ])
        self.assertEqual(out["sent"], [
            [{"type": "pong", "timestamp": "t0"}, {"type": "pong", "timestamp": "t1"}],
            [{"type": "pong", "timestamp": "t2"}],
        ])
        logged = [line.split(" ")[0] for line in out["logs"] if line.startswith("#")]
        self.assertEqual(logged, ["#41", "#42", "#43"])
        self.assertEqual(out["closed"], [1000, "bye"])
        self.assertFalse([line for line in out["logs"] if "s3cret" in line], out["logs"])


# ---------------------------------------------------------------------------------------------
# evstream.service and make install / uninstall

def install(destdir, *extra):
    build_dir = os.path.dirname(evstream_bin())
    return run(["make", "-C", ROOT, "--no-print-directory", "install", f"DESTDIR={destdir}",
                "PREFIX=/usr", f"BUILD_DIR={build_dir}", *extra], env=make_env())


INSTALLED = {
    "usr/bin/evstream": 0o755,
    "usr/share/man/man1/evstream.1": 0o644,
    "usr/share/bash-completion/completions/evstream": 0o644,
    "usr/share/zsh/site-functions/_evstream": 0o644,
    "usr/share/fish/vendor_completions.d/evstream.fish": 0o644,
}
SOURCES = {
    "usr/share/man/man1/evstream.1": "man/evstream.1",
    "usr/share/bash-completion/completions/evstream": "completions/evstream.bash",
    "usr/share/zsh/site-functions/_evstream": "completions/_evstream",
    "usr/share/fish/vendor_completions.d/evstream.fish": "completions/evstream.fish",
}


class InstallTest(unittest.TestCase):
    def setUp(self):
        require_tool("make")
        self.destdir = tempfile.mkdtemp(prefix="evstream-it-install-")
        self.addCleanup(shutil.rmtree, self.destdir, ignore_errors=True)

    def test_install_and_uninstall_into_destdir(self):
        dry = run(["make", "-C", ROOT, "-n", "install", f"DESTDIR={self.destdir}", "PREFIX=/usr",
                   f"BUILD_DIR={os.path.dirname(evstream_bin())}"], env=make_env())
        self.assertEqual(dry.returncode, 0, dry.stderr)
        self.assertNotRegex(dry.stdout, r"cmake|apt-get|dpkg", "install must not build or deps")

        result = install(self.destdir)
        self.assertEqual(result.returncode, 0, result.stderr)
        for path, mode in INSTALLED.items():
            full = os.path.join(self.destdir, path)
            self.assertTrue(os.path.isfile(full), f"{path} not installed")
            self.assertEqual(stat.S_IMODE(os.stat(full).st_mode), mode, path)
        self.assertTrue(filecmp.cmp(os.path.join(self.destdir, "usr/bin/evstream"),
                                    evstream_bin(), shallow=False))
        for path, source in SOURCES.items():
            self.assertTrue(filecmp.cmp(os.path.join(self.destdir, path),
                                        os.path.join(ROOT, source), shallow=False), path)
        version = run([os.path.join(self.destdir, "usr/bin/evstream"), "--version"])
        self.assertEqual(version.returncode, 0)
        self.assertTrue(version.stdout.startswith("evstream "), version.stdout)
        bash = run(["bash", "-c", 'source "$1" && complete -p evstream', "-",
                    os.path.join(self.destdir, "usr/share/bash-completion/completions/evstream")])
        self.assertEqual(bash.returncode, 0, bash.stderr)
        self.assertIn("evstream", bash.stdout)
        man = require_tool("man")
        found = run([man, "-w", "evstream"],
                    env=dict(client_env(), MANPATH=os.path.join(self.destdir, "usr/share/man")))
        self.assertEqual(found.stdout.strip(),
                         os.path.join(self.destdir, "usr/share/man/man1/evstream.1"), found.stderr)

        result = run(["make", "-C", ROOT, "--no-print-directory", "uninstall",
                      f"DESTDIR={self.destdir}", "PREFIX=/usr"], env=make_env())
        self.assertEqual(result.returncode, 0, result.stderr)
        left = [os.path.join(d, f) for d, _, files in os.walk(self.destdir) for f in files]
        self.assertEqual(left, [])

    def test_install_without_a_build_fails_clearly(self):
        result = run(["make", "-C", ROOT, "--no-print-directory", "install",
                      f"DESTDIR={self.destdir}", "PREFIX=/usr",
                      f"BUILD_DIR={os.path.join(self.destdir, 'no-build')}"], env=make_env())
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("no-build/evstream does not exist; build it first with 'make'",
                      result.stderr)
        self.assertEqual(os.listdir(self.destdir), [])


class SystemdUnitTest(unittest.TestCase):
    def setUp(self):
        self.analyze = require_tool("systemd-analyze")
        require_tool("man")
        with open(UNIT) as f:
            self.text = f.read()

    def directives(self):
        out = {}
        for line in self.text.splitlines():
            if line and not line.startswith(("#", "[")) and "=" in line:
                key, value = line.split("=", 1)
                out.setdefault(key.strip(), []).append(value.strip())
        return out

    def test_hardening_directives(self):
        d = self.directives()
        self.assertEqual(d["ExecStart"],
                         ["/usr/local/bin/evstream serve --config /etc/evstream/serve.toml"])
        expected = {"DynamicUser": "yes", "StateDirectory": "evstream", "ProtectSystem": "strict",
                    "NoNewPrivileges": "yes", "PrivateTmp": "yes", "LimitNOFILE": "65536",
                    "Restart": "on-failure", "ProtectHome": "yes", "CapabilityBoundingSet": "",
                    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX"}
        for key, value in expected.items():
            self.assertEqual(d.get(key), [value], key)
        # The options it passes exist.
        help_text = run([evstream_bin(), "serve", "--help"]).stdout
        for option in re.findall(r"--[a-z-]+", d["ExecStart"][0]):
            self.assertIn(option, help_text)

    def test_systemd_analyze_verify_and_security(self):
        with tempfile.TemporaryDirectory(prefix="evstream-it-unit-") as root:
            result = install(root)
            self.assertEqual(result.returncode, 0, result.stderr)
            # verify checks that ExecStart exists and that `man evstream(1)` finds the page: point
            # both at the staged install.
            unit = os.path.join(root, "evstream.service")
            with open(unit, "w") as f:
                f.write(self.text.replace("/usr/local/bin/evstream",
                                          os.path.join(root, "usr/bin/evstream")))
            env = dict(client_env(), MANPATH=os.path.join(root, "usr/share/man"))
            result = run([self.analyze, "verify", unit], env=env)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(result.stdout + result.stderr, "", "systemd-analyze verify warns")
            result = run([self.analyze, "security", "--offline=yes", unit], env=env)
            self.assertEqual(result.returncode, 0, result.stderr)
            level = re.search(r"Overall exposure level for evstream\.service: ([\d.]+) (\w+)",
                              result.stdout)
            self.assertIsNotNone(level, result.stdout[-2000:])
            self.assertLessEqual(float(level.group(1)), 2.0, result.stdout[-2000:])


class ExamplesReadmeTest(unittest.TestCase):
    def test_every_example_is_described(self):
        with open(os.path.join(EXAMPLES, "README.md")) as f:
            readme = f.read()
        for name in sorted(os.listdir(EXAMPLES)):
            if name != "README.md" and not name.startswith("."):
                self.assertIn(f"## {name}", readme, f"examples/README.md has no section on {name}")
        with open(os.path.join(ROOT, "README.md")) as f:
            self.assertTrue("examples/" in f.read(), "README.md does not point to examples/")

    def test_scripts_are_executable(self):
        for name in ("detector.py", "client.py", "pipelines.sh"):
            self.assertTrue(os.access(os.path.join(EXAMPLES, name), os.X_OK), name)


if __name__ == "__main__":
    unittest.main()
