"""The dashboard in a real browser: Debian's chromium, headless, driven over the DevTools protocol
(CDP) with python websockets. Checks that the page shows stored and live events with their salient
fields, answers pings, shows an event's JSON with its digits intact, and resumes without a gap after
the server restarts; that a search returns exactly the stored matches across pages and leaves the
live feed intact; that the rate chart shows the published rate; that a filtered view (restored from
its URL) receives only matching events and shows a refused filter's message; that bounding boxes
are drawn; and that the keyboard works (Enter submits, arrows move, Escape closes).

Opt-in (a browser is big and slow to start): runs only with EVSTREAM_E2E=1, which `make e2e` sets
after installing chromium. Screenshots at 1280x800 and 390x844 go to $EVSTREAM_SCREENSHOT_DIR, else
to a new temp dir whose path is printed (the test's own temp dir is removed when it passes)."""
import asyncio
import datetime
import http.client
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
from decimal import Decimal

import websockets

import test_http_api as api  # the module, not its classes: unittest would run them again here
from evtest import HOST, ServerProcess, async_wait_for, evstream_bin

E2E = os.environ.get("EVSTREAM_E2E") == "1"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NDJSON = {"Content-Type": "application/x-ndjson"}


def detection(i):
    labels = ["person", "car", "truck", "dog"]
    return {"camera_id": f"cam-{i % 3}", "frame": i,
            "objects": [{"label": labels[i % 4], "confidence": 0.5 + (i % 50) / 100}],
            "confidence": 0.5 + (i % 50) / 100, "description": f"detection number {i}"}


def matches(d, camera=None, label=None, min_conf=None, frame_above=None):
    """What the dashboard's search fields ask the server for, asked of a detection in Python."""
    return ((camera is None or d["camera_id"] in camera)
            and (label is None or any(o["label"] == label for o in d["objects"]))
            and (min_conf is None or Decimal(repr(d["confidence"])) >= Decimal(min_conf))
            and (frame_above is None or d["frame"] > frame_above))


def detector_events(count, cameras, seed):
    """Realistic detections (with bounding boxes) from examples/detector.py."""
    here = os.path.dirname(os.path.abspath(__file__))
    script = os.path.join(here, "..", "..", "examples", "detector.py")
    out = subprocess.run(["/usr/bin/python3", script, "--count", str(count), "--rate", "0",
                          "--seed", str(seed), "--cameras", str(cameras)],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def api_time(text):
    """Seconds since the epoch of a record's time (RFC 3339 UTC with microseconds)."""
    moment = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.replace(tzinfo=datetime.timezone.utc).timestamp()


def screenshot_dir():
    """$EVSTREAM_SCREENSHOT_DIR, else a temp dir of its own that outlives the test's."""
    path = os.environ.get("EVSTREAM_SCREENSHOT_DIR")
    if path:
        os.makedirs(path, exist_ok=True)
        return path
    return tempfile.mkdtemp(prefix="evstream-dashboard-screenshots-")


KEYS = {"Enter": 13, "Escape": 27, "ArrowDown": 40, "ArrowUp": 38, "Tab": 9}


class FixedPortServer(ServerProcess):
    """serve on a given port (to restart where the page expects it)."""

    def __init__(self, workdir, port, db, name):
        super().__init__(workdir, [], db=db, name=name)
        self.fixed_port = port

    def start(self):
        cmd = [evstream_bin(), "serve", "--host", HOST, "--port", str(self.fixed_port),
               "--db", self.db, "--ping-interval", "250ms"]
        with open(self.stderr_path, "ab") as stderr:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=stderr, cwd=self.workdir)
        self.url = self._read_url_line()
        return self


class Browser:
    """One headless chromium with one page, and a CDP session on that page."""

    def __init__(self, workdir):
        self.profile = tempfile.mkdtemp(prefix="chromium-", dir=workdir)
        self.log_path = os.path.join(workdir, "chromium.stderr")
        self.proc = None
        self.cdp = None
        self.next_id = 0

    async def open(self, url):
        args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--disable-dev-shm-usage", "--hide-scrollbars",
                "--window-size=1440,900", f"--user-data-dir={self.profile}",
                "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", url]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=log)
        # chromium writes the port it picked into the profile once DevTools listens.
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        def read_port():
            try:
                with open(port_file) as f:
                    return int(f.read().split()[0])
            except (OSError, IndexError, ValueError):
                return None
        port = await async_wait_for(read_port, 30, interval=0.05, what="chromium DevTools port")
        target = await async_wait_for(lambda: self._page_target(port), 15, interval=0.05,
                                      what="the page target")
        self.cdp = await websockets.connect(target, max_size=2 ** 26, ping_interval=None,
                                            open_timeout=10)
        await self.wait_js("document.readyState === 'complete' && !!document.getElementById('status')",
                           20, "the page to load")
        return self

    @staticmethod
    def _page_target(port):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", "/json/list")
            targets = json.loads(conn.getresponse().read())
        finally:
            conn.close()
        pages = [t for t in targets if t.get("type") == "page"]
        return pages[0]["webSocketDebuggerUrl"] if pages else None

    async def call(self, method, timeout=15, **params):
        self.next_id += 1
        await self.cdp.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            reply = json.loads(await asyncio.wait_for(self.cdp.recv(),
                                                      max(deadline - time.monotonic(), 0.01)))
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise AssertionError(f"CDP {method}: {reply['error']}")
                return reply["result"]

    async def js(self, expression):
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"page error in {expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def state(self):
        return await self.js("""(() => !document.getElementById('status') ?
          {status: 'loading', ids: [], connects: 0, pings: 0, stored: ''} : ({
            status: document.getElementById('status').dataset.state,
            ids: [...document.querySelectorAll('#feed .ev')].map(r => Number(r.dataset.id)),
            connects: Number(document.body.dataset.connects || 0),
            pings: Number(document.body.dataset.pings || 0),
            stored: document.getElementById('h-events').textContent }))()""")

    async def wait(self, condition, timeout, what):
        """Polls the page state until condition(state) holds; returns that state."""
        deadline = time.monotonic() + timeout
        while True:
            state = await self.state()
            if condition(state):
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; "
                                     f"state {dict(state, ids=state['ids'][:10])}")
            await asyncio.sleep(0.05)

    async def wait_js(self, expression, timeout, what):
        """Polls a JS expression until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = await self.js(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            await asyncio.sleep(0.05)

    async def key(self, name):
        """Presses and releases one key, as the keyboard would (focus, default actions)."""
        down = {"type": "keyDown" if name == "Enter" else "rawKeyDown", "key": name, "code": name,
                "windowsVirtualKeyCode": KEYS[name], "nativeVirtualKeyCode": KEYS[name]}
        if name == "Enter":
            down["text"] = "\r"  # what makes Enter submit a form
        await self.call("Input.dispatchKeyEvent", **down)
        await self.call("Input.dispatchKeyEvent", type="keyUp", key=name, code=name,
                        windowsVirtualKeyCode=KEYS[name], nativeVirtualKeyCode=KEYS[name])

    async def type_into(self, selector, text):
        """Focuses an input, empties it and types text into it."""
        await self.js(f"(() => {{ const i = document.querySelector({json.dumps(selector)}); "
                      f"i.focus(); i.select(); }})()")
        await self.call("Input.insertText", text=text)

    async def viewport(self, width, height, mobile=False):
        await self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                        deviceScaleFactor=1, mobile=mobile)

    async def screenshot(self, path):
        import base64
        shot = await self.call("Page.captureScreenshot", format="png")
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))

    async def close(self):
        if self.cdp is not None:
            await self.cdp.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # this chromium's own PID only
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@unittest.skipUnless(E2E, "browser test: run with EVSTREAM_E2E=1 (make e2e)")
@unittest.skipUnless(CHROMIUM, "chromium is not installed (make e2e installs it)")
class DashboardTest(api.HttpTestCase):
    async def browser(self, url):
        browser = Browser(self.tmpdir)
        self.addAsyncCleanup(browser.close)
        return await browser.open(url)

    async def test_live_feed(self):
        server = self.start_server("--ping-interval", "250ms")
        http_url = server.url.replace("ws://", "http://")
        self.post(server, api.ndjson([detection(i) for i in range(1, 31)]), NDJSON)
        page = await self.browser(http_url + "/")
        state = await page.wait(lambda s: s["status"] == "live" and len(s["ids"]) == 30, 20,
                                "the 30 stored events")
        self.assertEqual(state["ids"], list(range(30, 0, -1)))  # newest first
        # Live events, over HTTP and WebSocket, with a number too long for a double.
        self.post(server, api.ndjson([detection(i) for i in range(31, 41)]), NDJSON)
        await self.publish_many(server, [{"camera_id": "cam-big", "n": 123456789012345678901234567890}])
        state = await page.wait(lambda s: len(s["ids"]) == 41, 10, "41 events")
        self.assertEqual(state["ids"], list(range(41, 0, -1)))
        # Salient fields in the row: camera, labels with confidence, description.
        row = await page.js("document.querySelector('.ev[data-id=\"40\"]').innerText")
        for text in ["cam-1", "person", "90%", "detection number 40", "#40", "events"]:
            self.assertIn(text, row)
        # The page answers pings: many intervals pass on one connection.
        state = await page.wait(lambda s: s["pings"] >= 8, 10, "8 pings answered")
        self.assertEqual(state["connects"], 1, "the server closed a page that answers pings")
        self.assertEqual(state["status"], "live")
        # Clicking shows the full JSON, digits intact.
        await page.js("document.querySelector('.ev[data-id=\"41\"]').click()")
        detail = await page.js("document.getElementById('json').textContent")
        self.assertIn("123456789012345678901234567890", detail)
        self.assertIn('"camera_id": "cam-big"', detail)
        # Health figures arrive from /api/health.
        await page.wait(lambda s: s["stored"] == "41", 10, "health figures")

    async def test_dom_is_bounded(self):
        server = self.start_server()
        page = await self.browser(server.url.replace("ws://", "http://") + "/")
        await page.wait(lambda s: s["status"] == "live", 20, "live")
        self.post(server, api.ndjson([{"i": i} for i in range(700)]), NDJSON)
        state = await page.wait(lambda s: s["ids"] and s["ids"][0] == 700, 20, "event 700")
        self.assertEqual(state["ids"], list(range(700, 200, -1)))  # the newest 500

    async def test_read_token_from_page_url(self):
        server = self.start_server("--read-token", "rt-1")
        self.post(server, api.ndjson([detection(i) for i in range(1, 4)]), NDJSON)
        base = server.url.replace("ws://", "http://")
        page = await self.browser(base + "/?token=rt-1")
        await page.wait(lambda s: s["status"] == "live" and s["ids"] == [3, 2, 1], 20,
                        "the events, with the token")
        await page.wait(lambda s: s["stored"] == "3", 10, "health figures (need the token)")
        await page.close()
        page = await self.browser(base + "/")
        text = await page.wait_js("document.getElementById('notice').textContent", 20,
                                  "a notice about the missing token")
        self.assertIn("read token", text)
        self.assertEqual((await page.state())["ids"], [])

    async def test_resumes_after_restart_without_gaps(self):
        db = os.path.join(self.tmpdir, "restart.db")
        first = self.start_server("--ping-interval", "250ms", db=db)
        port = first.port
        self.post(first, api.ndjson([detection(i) for i in range(1, 21)]), NDJSON)
        page = await self.browser(f"http://127.0.0.1:{port}/")
        await page.wait(lambda s: s["status"] == "live" and len(s["ids"]) == 20, 20, "20 events")
        self.assertEqual(await first.stop(), 0)
        await page.wait(lambda s: s["status"] != "live", 10, "the page to notice")
        second = FixedPortServer(self.tmpdir, port, db, "second")
        self.servers.append(second)
        second.start()
        # Published while the page is (most likely) still waiting to reconnect.
        self.post(second, api.ndjson([detection(i) for i in range(21, 36)]), NDJSON)
        state = await page.wait(lambda s: len(s["ids"]) == 35, 30, "resume to 35")
        self.assertEqual(state["ids"], list(range(35, 0, -1)))
        self.assertGreaterEqual(state["connects"], 2)
        await page.wait(lambda s: s["status"] == "live", 10, "live again")
        self.post(second, api.ndjson([detection(i) for i in range(36, 41)]), NDJSON)
        state = await page.wait(lambda s: len(s["ids"]) == 40, 10, "live after resume")
        self.assertEqual(state["ids"], list(range(40, 0, -1)))

    # -- search ----------------------------------------------------------------------------------

    async def results(self, page, generation, loads=1, timeout=20):
        """Waits for search number `generation` to finish its `loads`th "Load more" (the first
        is the search itself); its state and the result ids shown."""
        return await page.wait_js(f"""(() => {{ const r = document.getElementById('results');
            return Number(r.dataset.generation) === {generation} && r.dataset.state !== 'loading' &&
              Number(r.dataset.loads) >= {loads} &&
              {{state: r.dataset.state,
                ids: [...r.querySelectorAll('.ev')].map(e => Number(e.dataset.id))}}; }})()""",
                                  timeout, f"search {generation} to answer ({loads})")

    async def all_results(self, page, generation):
        """Clicks "Load more" until the server says nothing follows; the ids and clicks made."""
        result, loads = await self.results(page, generation), 1
        while result["state"] == "more":
            self.assertLess(loads, 40, "the search never reached its last page")
            await page.js("document.getElementById('more').click()")
            loads += 1
            result = await self.results(page, generation, loads)
        self.assertEqual(result["state"], "done")
        return result["ids"], loads

    async def test_search_history(self):
        server = self.start_server("--ping-interval", "250ms")
        http_url = server.url.replace("ws://", "http://")
        events = {i: detection(i) for i in range(1, 401)}
        ids = self.post(server, api.ndjson([events[i] for i in range(1, 201)]), NDJSON)["ids"]
        # The second half is stored in a later second than the first, so a time range parts them.
        boundary = math.floor(time.time()) + 1
        await async_wait_for(lambda: time.time() >= boundary, 3, what="the next second")
        ids += self.post(server, api.ndjson([events[i] for i in range(201, 401)]), NDJSON)["ids"]
        id_of = dict(zip(range(1, 401), ids))
        # A search view opened from its URL: restored into the form, answered by the server.
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(boundary))
        view = urllib.parse.urlencode({"view": "search", "since": since, "camera": "cam-1",
                                       "label": "person", "min_conf": "0.7"})
        page = await self.browser(f"{http_url}/#{view}")
        expected = [id_of[i] for i in range(400, 200, -1)
                    if matches(events[i], ["cam-1"], "person", "0.7")]
        self.assertGreater(len(expected), 5)
        found, _ = await self.all_results(page, 1)
        self.assertEqual(found, expected)  # newest first, exactly the matches after `since`
        form = await page.js("""[...document.querySelectorAll('#search-form input')]
            .map(i => i.name + '=' + i.value).join(' ')""")
        for field in ["camera=cam-1", "label=person", "min_conf=0.7"]:
            self.assertIn(field, form)
        await page.wait(lambda s: s["status"] == "live" and len(s["ids"]) == 100, 10,
                        "the live feed behind the search")
        # Typed and submitted with Enter: several cameras, a free where, no time range; more
        # matches than one page holds, so "Load more" follows the server's next links.
        await page.js("document.getElementById('s-since').value = ''")
        await page.type_into("#s-camera", "cam-1, cam-2")
        await page.type_into("#s-label", "")
        await page.type_into("#s-conf", "0.6")
        await page.type_into("#s-where", "frame > 20")
        await page.key("Enter")
        expected = [id_of[i] for i in range(400, 0, -1)
                    if matches(events[i], ["cam-1", "cam-2"], None, "0.6", frame_above=20)]
        self.assertGreater(len(expected), 100)
        found, loads = await self.all_results(page, 2)
        self.assertEqual(found, expected)
        self.assertGreaterEqual(loads, 3)
        # The bars count what is in view: the results.
        by_camera = json.loads(await page.wait_js(f"""(() => {{
            const counts = document.getElementById('by-camera').dataset.counts;
            return Object.values(JSON.parse(counts)).reduce((a, b) => a + b, 0) === {len(expected)}
              && counts; }})()""", 5, "the bars to count the results"))
        self.assertEqual(by_camera, {c: sum(events[i]["camera_id"] == c for i in range(1, 401)
                                            if id_of[i] in set(expected)) for c in ["cam-1", "cam-2"]})
        # A result opens in the detail view.
        pick = expected[len(expected) // 2]
        await page.js(f"document.querySelector('#results .ev[data-id=\"{pick}\"]').click()")
        detail = await page.wait_js("document.getElementById('json') && "
                                    "document.getElementById('json').textContent", 5, "the detail")
        self.assertIn(f'"id": {pick}', detail)
        self.assertIn(f'"frame": {pick}', detail)
        folder = screenshot_dir()
        shots = [os.path.join(folder, f"dashboard-search-{size}.png") for size in ["1280x800", "390x844"]]
        await page.viewport(1280, 800)
        await page.screenshot(shots[0])
        await page.key("Escape")
        await page.viewport(390, 844, mobile=True)
        await page.screenshot(shots[1])
        self.assertLessEqual(await page.js("document.documentElement.scrollWidth"), 390)
        await page.viewport(1280, 800)
        print(f"\nscreenshots: {', '.join(shots)}", file=sys.stderr)
        # Live events published meanwhile are in the feed when switching back, on one connection.
        await self.publish_many(server, [detection(i) for i in range(401, 411)])
        await page.js("document.getElementById('view-live').click()")
        state = await page.wait(lambda s: s["ids"][:1] == [410], 10, "the live events")
        self.assertEqual(state["ids"], list(range(410, 300, -1)))
        self.assertEqual(state["connects"], 1)
        # A malformed where is the server's message, inline.
        await page.js("document.getElementById('view-search').click()")
        await page.type_into("#s-where", "frame >> 2")
        await page.key("Enter")
        message = await page.wait_js("document.getElementById('results').dataset.state === 'error'"
                                     " && document.getElementById('search-error').textContent",
                                     10, "the search error")
        self.assertIn("position", message)
        self.assertIn("frame >> 2", message)

    # -- at a glance -----------------------------------------------------------------------------

    async def test_rate_chart_bars_and_screenshots(self):
        rate, seconds = 20, 7
        server = self.start_server("--ping-interval", "1s")
        http_url = server.url.replace("ws://", "http://")
        page = await self.browser(http_url + "/")
        await page.wait(lambda s: s["status"] == "live", 20, "live")
        events = detector_events(rate * seconds, 4, seed=5)
        # A steady rate: each event is sent at its time (this loop paces, it does not wait for
        # the page). After 6 s, the headline (the last 5 complete seconds) is all publishing.
        pub = await self.publisher(server)
        start, headline = time.monotonic(), None
        for n, event in enumerate(events):
            await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
            if n == rate * 6:
                await page.js("window.dispatchEvent(new Event('resize'))")  # redraws the chart now
                headline = await page.js("document.getElementById('rate-chart').dataset.rate")
            reply = await pub.publish({"type": "event", "data": event})
            self.assertEqual(reply.type, "ack", reply)
        await pub.close()
        self.assertLess(abs(float(headline) - rate), 0.2 * rate, f"headline {headline}/s")
        state = await page.wait(lambda s: len(s["ids"]) == len(events), 10, "every event")
        # The chart's own numbers: per second, per camera. Seconds wholly inside the publishing
        # hold the rate within 20% on average, and every event is counted once.
        records, _ = self.page_all(server, "/api/events?order=asc&limit=1000")
        first, last = (math.floor(api_time(r["time"])) for r in (records[0], records[-1]))
        chart = await page.wait_js(f"""(() => {{ const r = window.evstreamDashboard.rate();
            return r.start + r.total.length > {last} && r; }})()""", 5, "the last second to pass")
        inside = [chart["total"][sec - chart["start"]] for sec in range(first + 1, last)]
        self.assertGreaterEqual(len(inside), seconds - 2)
        mean = sum(inside) / len(inside)
        self.assertLess(abs(mean - rate), 0.2 * rate, f"per second: {inside}")
        self.assertEqual(sum(chart["total"]), len(events))
        self.assertEqual(sorted(chart["cameras"]), ["cam-1", "cam-2", "cam-3", "cam-4"])
        mode = await page.js("document.getElementById('rate-chart').dataset.mode")
        self.assertEqual(mode, "per-camera")  # 4 cameras: a line each
        lines = await page.js("document.querySelectorAll('#rate-chart polyline').length")
        self.assertEqual(lines, 4)
        # Bars: events per label and per camera among the rows in view.
        by_label, by_camera = {}, {}
        for event in events:
            for label in {o["label"] for o in event["objects"]}:
                by_label[label] = by_label.get(label, 0) + 1
            by_camera[event["camera_id"]] = by_camera.get(event["camera_id"], 0) + 1
        bars = await page.wait_js(f"""(() => {{
            const bars = ['by-label', 'by-camera'].map(id =>
              JSON.parse(document.getElementById(id).dataset.counts || '{{}}'));
            return Object.values(bars[1]).reduce((a, b) => a + b, 0) === {len(events)} && bars;
          }})()""", 5, "the bars to count every event")
        self.assertEqual(bars, [by_label, by_camera])
        # Screenshots, with a detection open: desktop, then a phone's list and its detail.
        pick = next(r for r in reversed(records) if len(r["data"]["objects"]) >= 2)["id"]
        await page.js(f"document.querySelector('#feed .ev[data-id=\"{pick}\"]').click()")
        folder = screenshot_dir()
        shots = [os.path.join(folder, name) for name in
                 ["dashboard-1280x800.png", "dashboard-390x844.png", "dashboard-390x844-detail.png"]]
        await page.viewport(1280, 800)
        await page.wait_js("document.getElementById('frame').clientWidth > 0 && "
                           "document.getAnimations().length === 0", 5, "new rows to settle")
        await page.js("window.dispatchEvent(new Event('resize'))")
        await page.screenshot(shots[0])
        await page.key("Escape")
        await page.viewport(390, 844, mobile=True)
        await page.js("window.dispatchEvent(new Event('resize'))")
        await page.screenshot(shots[1])
        await page.js(f"document.querySelector('#feed .ev[data-id=\"{pick}\"]').click()")
        await page.wait_js("document.getElementById('frame').clientWidth > 0", 5, "the frame")
        await page.screenshot(shots[2])
        # Readable on a phone: nothing wider than the screen.
        overflow = await page.js("document.documentElement.scrollWidth")
        self.assertLessEqual(overflow, 390)
        print(f"\nscreenshots: {', '.join(shots)}", file=sys.stderr)

    # -- filtered live view, from its URL --------------------------------------------------------

    async def test_filtered_live_view_from_its_url(self):
        server = self.start_server("--ping-interval", "250ms")
        http_url = server.url.replace("ws://", "http://")
        events = {i: detection(i) for i in range(1, 99)}
        self.post(server, api.ndjson([events[i] for i in range(1, 61)]), NDJSON)
        where = ["camera_id = cam-2", "confidence >= 0.7"]
        page = await self.browser(f"{http_url}/#" + urllib.parse.urlencode([("where", w) for w in where]))
        wanted = lambda last: [i for i in range(last, 0, -1) if matches(events[i], ["cam-2"], None, "0.7")]
        state = await page.wait(lambda s: s["status"] == "live" and s["ids"] == wanted(60), 20,
                                "the stored matches")
        self.assertEqual(await page.js("document.getElementById('filter').value"), "; ".join(where))
        # Live: only matching events arrive (the last one matches, so all before it are in).
        self.assertTrue(matches(events[98], ["cam-2"], None, "0.7"))
        await self.publish_many(server, [events[i] for i in range(61, 99)])
        state = await page.wait(lambda s: s["ids"][:1] == [98], 10, "the last matching event")
        self.assertEqual(state["ids"], wanted(98))
        self.assertEqual(state["connects"], 1)
        # The chart counts what the filter lets through (once the current second is complete).
        await page.wait_js("window.evstreamDashboard.rate().total.reduce((a, b) => a + b, 0) === "
                           f"{len(wanted(98))}", 5, "the chart to count the matching events")
        # A malformed filter: the server's message at the box, and no reconnecting.
        await page.type_into("#filter", "confidence >> 1")
        await page.key("Enter")
        message = await page.wait_js("document.body.dataset.rejected === 'true' && "
                                     "document.getElementById('filter-error').textContent", 10,
                                     "the refusal")
        self.assertIn('bad where "confidence >> 1" at position', message)
        connects = (await page.state())["connects"]
        await asyncio.sleep(1.5)  # an observation window: a retry loop would reconnect in 0.5 s
        state = await page.state()
        self.assertEqual(state["connects"], connects)
        self.assertEqual(state["status"], "error")
        # Fixed: the view follows the new filter, and the URL carries it.
        await page.type_into("#filter", "objects.label = dog")
        await page.key("Enter")
        dogs = [i for i in range(98, 0, -1) if matches(events[i], label="dog")]
        await page.wait(lambda s: s["status"] == "live" and s["ids"] == dogs, 10, "the dogs")
        self.assertTrue(await page.js("document.getElementById('filter-error').classList.contains('hidden')"))
        hash_ = await page.js("location.hash")
        self.assertEqual(urllib.parse.parse_qs(hash_[1:]), {"where": ["objects.label = dog"]})
        # Ids 99, 100, 101: a dog, a person, a dog.
        await self.publish_many(server, [detection(99), detection(100), detection(103)])
        state = await page.wait(lambda s: s["ids"][:1] == [101], 10, "the live dogs")
        self.assertEqual(state["ids"][:2], [101, 99])

    # -- detail and keyboard ---------------------------------------------------------------------

    async def test_bounding_boxes_and_keyboard(self):
        server = self.start_server()
        http_url = server.url.replace("ws://", "http://")
        boxes = [
            # pixels of an unnamed frame: the example detector's 1920x1080
            {"camera_id": "cam-1", "objects": [
                {"label": "truck", "confidence": 0.917, "bbox": [704, 579, 552, 320]},
                {"label": "person", "confidence": 0.496, "bbox": [865, 618, 98, 266]}]},
            # fractions of the frame
            {"camera_id": "cam-2", "objects": [{"label": "car", "confidence": 0.8,
                                                 "bbox": [0.25, 0.5, 0.5, 0.25]}]},
            # pixels of the frame the event names
            {"camera_id": "cam-3", "width": 640, "height": 480,
             "objects": [{"label": "dog", "confidence": 0.7, "bbox": [10, 20, 300, 200]}]},
            {"camera_id": "cam-4", "objects": [{"label": "cat", "confidence": 0.6}]},
        ]
        self.post(server, api.ndjson(boxes), NDJSON)
        page = await self.browser(http_url + "/")
        await page.wait(lambda s: s["ids"] == [4, 3, 2, 1], 20, "the events")
        expect = {1: ("1920x1080", 2), 2: ("normalised", 1), 3: ("640x480", 1)}
        for event_id, (frame, count) in expect.items():
            await page.js(f"document.querySelector('#feed .ev[data-id=\"{event_id}\"]').click()")
            canvas = await page.wait_js("""(() => { const c = document.getElementById('frame');
                return c && c.dataset.boxes && {frame: c.dataset.frame, width: c.width,
                  height: c.height, boxes: JSON.parse(c.dataset.boxes)}; })()""", 5, "the frame")
            self.assertEqual(canvas["frame"], frame)
            self.assertEqual(len(canvas["boxes"]), count)
            if frame != "normalised":
                w, h = (int(v) for v in frame.split("x"))
                self.assertAlmostEqual(canvas["width"] / canvas["height"], w / h, delta=0.02)
            # Drawn: the middle of the first box's left edge has its colour, unlike the frame.
            box = canvas["boxes"][0]
            edge, blank = await page.js(f"""(() => {{ const c = document.getElementById('frame');
                const g = c.getContext('2d'), k = c.width / c.clientWidth;
                const px = (x, y) => [...g.getImageData(Math.round(x * k), Math.round(y * k), 1, 1).data];
                return [px({box['x']}, {box['y'] + box['h'] / 2}), px(2, 2)]; }})()""")
            self.assertNotEqual(edge[:3], blank[:3], f"event {event_id}: box not drawn")
        # The event without boxes has no frame.
        await page.js("document.querySelector('#feed .ev[data-id=\"4\"]').click()")
        await page.wait_js("document.getElementById('json') && !document.getElementById('frame')",
                           5, "the detail without a frame")
        # Keyboard: the feed is one tab stop, arrows move, Enter opens, Escape closes and gives
        # the focus back to the row; the focused row shows a focus ring.
        await page.key("Escape")
        await page.js("document.getElementById('filter').focus()")
        tab_stops = []
        for _ in range(6):
            await page.key("Tab")
            tab_stops.append(await page.js("""(() => { const a = document.activeElement;
                return a.id || (a.classList.contains('ev') ? 'row-' + a.dataset.id : a.tagName); })()"""))
            if tab_stops[-1].startswith("row-"):
                break
        self.assertEqual(tab_stops, ["apply", "pause", "row-4"])
        await page.key("ArrowDown")
        await page.key("ArrowDown")
        self.assertEqual(await page.js("document.activeElement.dataset.id"), "2")
        outline = await page.js("getComputedStyle(document.activeElement).outlineStyle")
        self.assertNotEqual(outline, "none")
        await page.key("Enter")
        await page.wait_js("document.getElementById('detail-card').dataset.open === 'true' && "
                           "document.getElementById('detail-title').textContent === 'Event #2'",
                           5, "the detail of event 2")
        self.assertIn("event=2", await page.js("location.hash"))
        await page.key("Escape")
        await page.wait_js("document.getElementById('detail-card').dataset.open === 'false' && "
                           "!document.getElementById('json')", 5, "the detail to close")
        self.assertEqual(await page.js("document.activeElement.dataset.id"), "2")
        self.assertNotIn("event=", await page.js("location.hash"))


if __name__ == "__main__":
    unittest.main()
