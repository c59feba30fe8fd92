"""The dashboard in a real browser: Debian's chromium, headless, driven over the DevTools protocol
(CDP) with python websockets. Checks that the page shows stored and live events with their salient
fields, answers pings, filters, shows an event's JSON with its digits intact, and resumes without a
gap after the server restarts.

Opt-in (a browser is big and slow to start): runs only with EVSTREAM_E2E=1, which `make e2e` sets
after installing chromium. EVSTREAM_SCREENSHOT=/path.png also saves a screenshot of the page."""
import asyncio
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

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
        # The filter box hides what does not match.
        shown = await page.js("""(() => { const f = document.getElementById('filter');
            f.value = 'cam-big'; f.dispatchEvent(new Event('input'));
            return [...document.querySelectorAll('#feed .ev:not(.hidden)')].map(r => r.dataset.id); })()""")
        self.assertEqual(shown, ["41"])
        await page.js("""(() => { const f = document.getElementById('filter');
            f.value = ''; f.dispatchEvent(new Event('input')); })()""")
        # Health figures arrive from /api/health.
        await page.wait(lambda s: s["stored"] == "41", 10, "health figures")
        if os.environ.get("EVSTREAM_SCREENSHOT"):
            await page.js("document.querySelector('.ev[data-id=\"40\"]').click()")
            await page.screenshot(os.environ["EVSTREAM_SCREENSHOT"])

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


if __name__ == "__main__":
    unittest.main()
