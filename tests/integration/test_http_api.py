"""The REST half of serve: POST/GET /api/events, /api/events/{id}, /api/health, /metrics,
/api/openapi.json, the dashboard page, status codes and content types. Uses the real binary on
--port 0 (evtest.ServerTestCase) and http.client against 127.0.0.1 only."""
import http.client
import json
import unittest
from urllib.parse import quote

from evtest import RECV_TIMEOUT, ServerTestCase, async_wait_for, raw_member, wait_for


def http_request(server, method, path, body=None, headers=None, timeout=10, context=None):
    """One request on a fresh connection: (status, lower-cased headers, body text)."""
    host, port = "127.0.0.1", server.port
    if context is not None:
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        if isinstance(body, str):
            body = body.encode()
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        text = response.read().decode("utf-8")
        return response.status, {k.lower(): v for k, v in response.getheaders()}, text
    finally:
        conn.close()


def ndjson(objects):
    return "\n".join(json.dumps(o) for o in objects) + "\n"


NDJSON = {"Content-Type": "application/x-ndjson"}


class HttpTestCase(ServerTestCase):
    def call(self, server, method, path, body=None, headers=None, expect=None):
        status, headers_out, text = http_request(server, method, path, body, headers)
        if expect is not None:
            self.assertEqual(status, expect, f"{method} {path}: {text[:300]}")
        if headers_out.get("content-type", "").startswith("application/json"):
            return status, headers_out, json.loads(text)
        return status, headers_out, text

    def post(self, server, body, headers=None, expect=201):
        return self.call(server, "POST", "/api/events", body, headers, expect)[2]

    def get(self, server, path, expect=200):
        return self.call(server, "GET", path, expect=expect)[2]

    def page_all(self, server, path):
        """Follows `next` from `path`; every record, in page order, and the number of pages."""
        records, pages = [], 0
        while path is not None:
            page = self.get(server, path)
            records.extend(page["events"])
            path = page["next"]
            pages += 1
            self.assertLess(pages, 1000, "next never became null")
        return records, pages


class PostEventsTest(HttpTestCase):
    async def test_single_object_is_stored_broadcast_and_readable(self):
        server = self.start_server()
        sub = await self.subscribe(server)
        raw = '{"camera_id": "cam-1", "n": 123456789012345678901234567890, "f": 1.10, "u": "\\u00e9"}'
        status, headers, body = self.call(server, "POST", "/api/events", raw,
                                          {"Content-Type": "application/json"}, expect=201)
        self.assertEqual(body, {"id": 1})
        self.assertTrue(headers["content-type"].startswith("application/json"))
        self.assertEqual(headers.get("location"), "/api/events/1")
        # Subscribers get it exactly like an event from /ws/publish.
        [event] = await sub.events(1)
        self.assertEqual(event["id"], 1)
        self.assertEqual(event["topic"], "events")
        expected = '{"camera_id":"cam-1","n":123456789012345678901234567890,"f":1.10,"u":"\\u00e9"}'
        self.assertEqual(raw_member(event.raw, "data"), expected)
        # REST gives the same bytes back.
        _, _, text = http_request(server, "GET", "/api/events/1")
        self.assertEqual(raw_member(text, "data"), expected)
        self.assertEqual(json.loads(text)["topic"], "events")

    async def test_envelope_topic_and_key(self):
        server = self.start_server()
        body = self.post(server, '{"type":"event","topic":"doors","key":"k1","data":{"open":true}}')
        self.assertEqual(body, {"id": 1})
        again = self.post(server, '{"type":"event","topic":"doors","key":"k1","data":{"open":true}}')
        self.assertEqual(again, {"id": 1, "duplicate": True})
        self.assertEqual(self.get(server, "/api/events/1")["topic"], "doors")

    async def test_idempotency_key_header(self):
        server = self.start_server()
        sub = await self.subscribe(server)
        headers = {"Idempotency-Key": "order-77"}
        self.assertEqual(self.post(server, '{"a":1}', headers), {"id": 1})
        self.assertEqual(self.post(server, '{"a":1}', headers), {"id": 1, "duplicate": True})
        self.assertEqual(self.post(server, '{"a":2}', {"Idempotency-Key": "order-78"}), {"id": 2})
        # The duplicate was neither stored nor broadcast.
        events = await sub.events(2)
        self.assertEqual([e["id"] for e in events], [1, 2])
        await sub.expect_silence(0.3)
        self.assertEqual(len(self.get(server, "/api/events")["events"]), 2)
        # NDJSON: KEY:LINE per line, so re-posting the same batch stores nothing twice.
        batch = ndjson([{"b": 1}, {"b": 2}])
        first = self.post(server, batch, {**NDJSON, "Idempotency-Key": "batch-1"})
        second = self.post(server, batch, {**NDJSON, "Idempotency-Key": "batch-1"})
        self.assertEqual(first, {"ids": [3, 4]})
        self.assertEqual(second, {"ids": [3, 4], "duplicates": 2})

    async def test_ndjson_all_or_nothing(self):
        server = self.start_server()
        sub = await self.subscribe(server)
        good = [{"camera_id": f"c{i}", "i": i} for i in range(5)]
        body = self.post(server, ndjson(good), NDJSON)
        self.assertEqual(body, {"ids": [1, 2, 3, 4, 5]})
        events = await sub.events(5)
        self.assertEqual([json.loads(raw_member(e.raw, "data"))["i"] for e in events], list(range(5)))
        # A bad third line: 400 naming it, and nothing of the batch stored or broadcast.
        lines = '{"ok":1}\n{"ok":2}\n{"bad": }\n{"ok":4}\n'
        status, _, error = self.call(server, "POST", "/api/events", lines, NDJSON, expect=400)
        self.assertTrue(error["error"].startswith("line 3: invalid JSON"), error)
        status, _, error = self.call(server, "POST", "/api/events", '{"a":1}\n[2]\n', NDJSON,
                                     expect=400)
        self.assertEqual(error["error"], "line 2: an event must be a JSON object, not an array")
        status, _, error = self.call(server, "POST", "/api/events",
                                     '{"a":1}\n{"type":"event","topic":"a b","data":{}}\n', NDJSON,
                                     expect=400)
        self.assertTrue(error["error"].startswith("line 2: "), error)
        await sub.expect_silence(0.3)
        self.assertEqual(self.get(server, "/api/health")["last_event_id"], 5)
        # Blank lines and CRLF are fine; topics per line are kept.
        body = self.post(server, '{"x":1}\r\n\r\n{"type":"event","topic":"t2","data":{"x":2}}\r\n',
                         NDJSON)
        self.assertEqual(body, {"ids": [6, 7]})
        self.assertEqual(self.get(server, "/api/events/7")["topic"], "t2")

    async def test_bad_bodies(self):
        server = self.start_server()
        for body, fragment in [("", "empty body"), ("nope", "invalid JSON"),
                               ("[1]", "must be a JSON object"), ('"x"', "must be a JSON object"),
                               ('{"type":"event","data":[1]}', '"data" must be a JSON object')]:
            _, headers, error = self.call(server, "POST", "/api/events", body, expect=400)
            self.assertIn(fragment, error["error"])
            self.assertTrue(headers["content-type"].startswith("application/json"))
        _, _, error = self.call(server, "POST", "/api/events", "\n\n", NDJSON, expect=400)
        self.assertIn("empty body", error["error"])
        self.assertEqual(self.get(server, "/api/events")["events"], [])

    async def test_too_large(self):
        server = self.start_server("--max-message-bytes", "1KiB")
        big = json.dumps({"blob": "x" * 2000})
        _, _, error = self.call(server, "POST", "/api/events", big, expect=413)
        self.assertIn("larger than 1024 bytes", error["error"])
        # The connection stays usable and the server healthy.
        self.assertEqual(self.post(server, '{"small":1}'), {"id": 1})
        # NDJSON may carry 16x the limit in total, each line still within the limit...
        lines = ndjson([{"blob": "y" * 900}] * 15)
        self.assertEqual(len(self.post(server, lines, NDJSON)["ids"]), 15)
        # ...but not one oversized line, and not more than 16x in total.
        _, _, error = self.call(server, "POST", "/api/events", ndjson([{"a": 1}, {"b": "z" * 2000}]),
                                NDJSON, expect=400)
        self.assertEqual(error["error"], "line 2: larger than 1024 bytes")
        self.call(server, "POST", "/api/events", ndjson([{"blob": "y" * 900}] * 20), NDJSON,
                  expect=413)
        self.assertEqual(self.get(server, "/api/health")["last_event_id"], 16)


class GetEventsTest(HttpTestCase):
    async def test_paging_2500_events_without_gaps(self):
        server = self.start_server()
        objects = [{"i": i} if i % 3 else {"type": "event", "topic": "three", "data": {"i": i}}
                   for i in range(2500)]
        ids = self.post(server, ndjson(objects), NDJSON)["ids"]
        self.assertEqual(ids, list(range(1, 2501)))
        # Default: newest first, 100 per page.
        first = self.get(server, "/api/events")
        self.assertEqual([r["id"] for r in first["events"]], list(range(2500, 2400, -1)))
        self.assertEqual(first["next"], "/api/events?before=2401&limit=100&order=desc")
        # Whole store, desc, max pages.
        records, pages = self.page_all(server, "/api/events?limit=1000")
        self.assertEqual([r["id"] for r in records], list(range(2500, 0, -1)))
        self.assertEqual(pages, 3)
        # Ascending in odd-sized pages, and a page size that divides the total exactly: the last
        # page still says null (no empty extra page).
        records, pages = self.page_all(server, "/api/events?order=asc&limit=333")
        self.assertEqual([r["id"] for r in records], list(range(1, 2501)))
        self.assertEqual(pages, 8)
        records, pages = self.page_all(server, "/api/events?order=asc&limit=500")
        self.assertEqual(pages, 5)
        # A topic filter with id bounds, and records keep their data.
        records, _ = self.page_all(server, "/api/events?topic=three&after=100&before=2000&limit=50")
        expected = [i + 1 for i in range(2500) if i % 3 == 0 and 100 < i + 1 < 2000]
        self.assertEqual(sorted(r["id"] for r in records), expected)
        self.assertTrue(all(r["topic"] == "three" and r["data"]["i"] == r["id"] - 1 for r in records))
        # Repeated topic= means any of them.
        page = self.get(server, "/api/events?topic=three&topic=events&limit=5")
        self.assertEqual(len(page["events"]), 5)

    async def test_time_bounds(self):
        server = self.start_server()
        self.post(server, ndjson([{"n": 1}, {"n": 2}]), NDJSON)
        records = self.get(server, "/api/events?order=asc")["events"]
        t1, t2 = records[0]["time"], records[1]["time"]
        page = self.get(server, "/api/events?order=asc&since=" + quote(t2))
        self.assertEqual([r["id"] for r in page["events"]], [2])
        page = self.get(server, "/api/events?order=asc&until=" + quote(t1))
        self.assertEqual([r["id"] for r in page["events"]], [1])
        page = self.get(server, "/api/events?since=1h")
        self.assertEqual(len(page["events"]), 2)
        self.assertEqual(self.get(server, "/api/events?until=1h")["events"], [])
        # An offset time works too (here 2 hours east of UTC, URL-encoded '+').
        page = self.get(server, "/api/events?since=" + quote("2000-01-01T02:00:00+02:00"))
        self.assertEqual(len(page["events"]), 2)

    async def test_bad_parameters_are_named(self):
        server = self.start_server()
        for query, name in [("limit=0", "limit="), ("limit=abc", "limit="), ("after=x", "after="),
                            ("before=-3", "before="), ("since=yesterday", "since="),
                            ("until=17", "until="), ("order=sideways", "order="),
                            ("topic=a%20b", "topic="), ("colour=red", '"colour"')]:
            _, headers, error = self.call(server, "GET", "/api/events?" + query, expect=400)
            self.assertIn(name, error["error"], query)
            self.assertTrue(headers["content-type"].startswith("application/json"))
        # limit above 1000 is capped, not refused.
        self.assertEqual(self.get(server, "/api/events?limit=5000")["events"], [])

    async def test_one_event(self):
        server = self.start_server()
        self.post(server, '{"camera_id":"c9"}')
        record = self.get(server, "/api/events/1")
        self.assertEqual(set(record), {"id", "topic", "time", "data"})
        self.assertEqual(record["data"], {"camera_id": "c9"})
        for path in ["/api/events/2", "/api/events/0", "/api/events/abc", "/api/events/-1"]:
            _, _, body = self.call(server, "GET", path, expect=404)
            self.assertEqual(body, {"error": "not found"})


class OtherEndpointsTest(HttpTestCase):
    async def test_health(self):
        server = self.start_server()
        self.post(server, '{"a":1}')
        health = self.get(server, "/api/health")
        for key in ["status", "version", "uptime_s", "subscribers", "publishers", "events_total",
                    "last_event_id", "rss_bytes", "db"]:
            self.assertIn(key, health)
        self.assertEqual(health["status"], "ok")
        self.assertEqual(health["events_total"], 1)
        self.assertEqual(health["last_event_id"], 1)
        self.assertGreater(health["rss_bytes"], 0)
        self.assertIn("queue_depth", health["db"])
        self.assertEqual((health["subscribers"], health["publishers"]), (0, 0))
        subs = [await self.subscribe(server) for _ in range(2)]
        pub = await self.publisher(server)
        health = self.get(server, "/api/health")
        self.assertEqual((health["subscribers"], health["publishers"]), (2, 1))
        await pub.close()
        await subs[0].close()
        await async_wait_for(
            lambda: (lambda h: (h["subscribers"], h["publishers"]) == (1, 0))(
                self.get(server, "/api/health")), RECV_TIMEOUT, what="counts after two left")

    async def test_metrics(self):
        server = self.start_server()
        sub = await self.subscribe(server)
        await self.publish_many(server, [{"ws": 1}, {"ws": 2}])
        self.post(server, ndjson([{"http": 1}, {"http": 2}, {"http": 3}]), NDJSON)
        await sub.events(5)
        status, headers, text = self.call(server, "GET", "/metrics", expect=200)
        self.assertTrue(headers["content-type"].startswith("text/plain"))
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                samples[name] = float(value)
        self.assertEqual(samples['evstream_connections{kind="subscriber"}'], 1)
        self.assertEqual(samples['evstream_connections_total{kind="publisher"}'], 1)
        self.assertEqual(samples["evstream_events_in_total"], 5)
        self.assertEqual(samples["evstream_http_events_in_total"], 3)
        self.assertGreaterEqual(samples["evstream_messages_out_total"], 6)  # greeting + 5 events
        self.assertGreater(samples["evstream_bytes_out_total"], 0)
        self.assertEqual(samples["evstream_slow_consumer_closes_total"], 0)
        self.assertEqual(samples["evstream_dead_client_closes_total"], 0)
        self.assertEqual(samples["evstream_rejected_frames_total"], 0)
        self.assertEqual(samples["evstream_ingest_to_enqueue_seconds_count"], 5)
        self.assertEqual(samples['evstream_ingest_to_enqueue_seconds_bucket{le="+Inf"}'], 5)
        # One delivery sample per event and live subscriber, taken when it was written.
        self.assertEqual(samples["evstream_delivery_seconds_count"], 5)
        self.assertLessEqual(samples['evstream_delivery_seconds_bucket{le="0.002"}'], 5)
        self.assertGreaterEqual(samples["evstream_store_commit_seconds_count"], 2)
        self.assertEqual(samples["evstream_store_batch_events_sum"], 5)
        # Every family is declared once, before its samples.
        types = [l.split()[2] for l in text.splitlines() if l.startswith("# TYPE")]
        self.assertEqual(len(types), len(set(types)))

    async def test_openapi(self):
        server = self.start_server()
        _, headers, doc = self.call(server, "GET", "/api/openapi.json", expect=200)
        self.assertTrue(headers["content-type"].startswith("application/json"))
        self.assertEqual(doc["openapi"], "3.1.0")
        for path in ["/api/events", "/api/events/{id}", "/api/health", "/metrics", "/ws/events",
                     "/ws/publish"]:
            self.assertIn(path, doc["paths"])
        for schema in ["Ping", "Pong", "EventMessage", "ErrorMessage", "Ack", "PublishFrame"]:
            self.assertIn(schema, doc["components"]["schemas"])

    async def test_dashboard_page(self):
        server = self.start_server()
        _, headers, page = self.call(server, "GET", "/", expect=200)
        self.assertTrue(headers["content-type"].startswith("text/html"))
        self.assertTrue(page.startswith("<!doctype html>"))
        self.assertIn("/ws/events", page)
        self.assertNotIn("http://", page.replace("http://www.w3.org/2000/svg", ""))  # no downloads
        self.assertNotIn("https://", page)

    async def test_unknown_paths_and_methods(self):
        server = self.start_server()
        for path in ["/nope", "/api", "/api/eventsx", "/api/events/1/2x"]:
            _, headers, body = self.call(server, "GET", path, expect=404)
            self.assertEqual(body, {"error": "not found"})
            self.assertTrue(headers["content-type"].startswith("application/json"))
        for method, path, allow in [("DELETE", "/api/events", "GET, POST"),
                                    ("PUT", "/api/events/1", "GET"),
                                    ("POST", "/api/health", "GET"), ("POST", "/metrics", "GET"),
                                    ("POST", "/", "GET"), ("PATCH", "/api/openapi.json", "GET")]:
            _, headers, body = self.call(server, method, path, "{}", expect=405)
            self.assertIn("not allowed", body["error"])
            self.assertEqual(headers["allow"], allow)

    async def test_keep_alive_connection_serves_many_requests(self):
        server = self.start_server()
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            for i in range(20):
                conn.request("POST", "/api/events", body=json.dumps({"i": i}))
                response = conn.getresponse()
                self.assertEqual(response.status, 201)
                self.assertEqual(json.loads(response.read()), {"id": i + 1})
                conn.request("GET", f"/api/events/{i + 1}")
                response = conn.getresponse()
                self.assertEqual(json.loads(response.read())["data"], {"i": i})
                # HEAD: the GET's headers, no body, and the connection stays in step.
                conn.request("HEAD", f"/api/events/{i + 1}")
                response = conn.getresponse()
                self.assertEqual(response.status, 200)
                self.assertGreater(int(response.getheader("content-length")), 0)
                self.assertEqual(response.read(), b"")
        finally:
            conn.close()

    async def test_client_gone_before_commit_does_not_hurt(self):
        server = self.start_server()
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("POST", "/api/events", body=ndjson([{"i": i} for i in range(500)]),
                     headers=NDJSON)
        conn.close()  # leave without reading the reply
        self.post(server, '{"after":1}')
        # The abandoned batch is still stored in full (whether before or after the single post),
        # and the server keeps answering.
        health = wait_for(lambda: (lambda h: h if h["events_total"] == 501 else None)(
            self.get(server, "/api/health")), 10, interval=0.05, what="all 501 events stored")
        self.assertEqual(health["last_event_id"], 501)


if __name__ == "__main__":
    unittest.main()
