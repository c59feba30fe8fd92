"""GET /api/events/stream in a real browser: headless chromium's EventSource receives stored and
live events, and after the server restarts it reconnects by itself, sends Last-Event-ID and
resumes with no gap and no duplicate. Opt-in like the dashboard test: EVSTREAM_E2E=1 (make e2e)."""
import unittest

import test_dashboard_e2e as e2e  # the module, not its classes: unittest would run them again
import test_http_api as api
from evtest import free_port

# Collects what the page's EventSource sees: records (by id) and how often it (re)opened.
OPEN_EVENT_SOURCE = """(() => {
  window.sse = {ids: [], opens: 0, pings: 0, errors: 0, lastEventIds: []};
  const source = new EventSource('/api/events/stream?last=5');
  source.onopen = () => { window.sse.opens += 1; };
  source.onerror = () => { window.sse.errors += 1; };
  source.addEventListener('ping', () => { window.sse.pings += 1; });
  source.onmessage = (message) => {
    const record = JSON.parse(message.data);
    if (record.type === 'event') {
      window.sse.ids.push(record.id);
      window.sse.lastEventIds.push(message.lastEventId);
    }
  };
  return true;
})()"""


@unittest.skipUnless(e2e.E2E, "browser test: run with EVSTREAM_E2E=1 (make e2e)")
@unittest.skipUnless(e2e.CHROMIUM, "chromium is not installed (make e2e installs it)")
class EventSourceTest(api.HttpTestCase):
    async def sse_state(self, page):
        return await page.js("window.sse")

    async def wait_sse(self, page, condition, timeout, what):
        return await page.wait_js(f"(() => {{ const s = window.sse; return ({condition}) && s; }})()",
                                  timeout, what)

    async def test_event_source_resumes_after_a_restart(self):
        port = free_port()
        db = f"{self.tmpdir}/sse.db"
        server = e2e.FixedPortServer(self.tmpdir, port, db, "server1")
        self.servers.append(server)
        server.start()
        http_url = server.url.replace("ws://", "http://")
        self.post(server, api.ndjson([e2e.detection(i) for i in range(1, 11)]), e2e.NDJSON)
        browser = e2e.Browser(self.tmpdir)
        self.addAsyncCleanup(browser.close)
        page = await browser.open(http_url + "/")
        await page.js(OPEN_EVENT_SOURCE)
        state = await self.wait_sse(page, "s.ids.length >= 5", 15, "the last 5 stored events")
        self.assertEqual(state["ids"], [6, 7, 8, 9, 10])
        self.assertEqual(state["lastEventIds"], ["6", "7", "8", "9", "10"])
        self.assertEqual(state["pings"], 1)  # the greeting is a typed event, not a message
        self.post(server, api.ndjson([e2e.detection(i) for i in range(11, 16)]), e2e.NDJSON)
        await self.wait_sse(page, "s.ids.length >= 10", 10, "5 live events")

        # The server goes away; events are stored while the browser is disconnected.
        server.kill()
        await self.wait_sse(page, "s.errors >= 1", 10, "the browser to see the stream end")
        server = e2e.FixedPortServer(self.tmpdir, port, db, "server2")
        self.servers.append(server)
        server.start()
        self.post(server, api.ndjson([e2e.detection(i) for i in range(16, 26)]), e2e.NDJSON)
        state = await self.wait_sse(page, "s.ids.length >= 20 && s.opens >= 2", 20,
                                    "the EventSource to reconnect and catch up")
        # Resumed from Last-Event-ID 15, not from last=5 of its URL: nothing lost, nothing twice.
        self.assertEqual(state["ids"], list(range(6, 26)))
        self.post(server, api.ndjson([e2e.detection(26)]), e2e.NDJSON)
        state = await self.wait_sse(page, "s.ids.length >= 21", 10, "a live event after resuming")
        self.assertEqual(state["ids"][-1], 26)
        self.assertEqual(len(server.find_log("connect", path="/api/events/stream")), 1)
