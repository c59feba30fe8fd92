"""where= field filters on /ws/events and /api/events/stream (live, since=, last=, resume), with
real WebSocket and curl clients against the real binary on 127.0.0.1. The language itself is unit-
tested in tests/core/wire/test_filter.cpp."""
import json
from urllib.parse import quote

from evtest import ClientTestCase, RECV_TIMEOUT, async_wait_for
from test_http_api import NDJSON, http_request, ndjson
from test_http_stream import CurlStream

LABELS = ["person", "car", "truck"]


def detection(i):
    return {"camera_id": f"cam-{i % 3}", "n": i, "big": 10 ** 30 + i,
            "objects": [{"label": LABELS[i % 3], "confidence": round(0.5 + (i % 5) / 10, 2)},
                        {"label": "dog", "confidence": 0.3}]}


def where(*expressions):
    return "&".join("where=" + quote(e, safe="") for e in expressions)


class WhereTest(ClientTestCase):
    def post(self, server, datas):
        status, _, text = http_request(server, "POST", "/api/events", ndjson(datas), NDJSON)
        self.assertEqual(status, 201, text)
        return json.loads(text)["ids"]

    def publish_detections(self, server, first, last):
        ids = self.post(server, [detection(i) for i in range(first, last + 1)])
        return dict(zip(ids, range(first, last + 1)))  # id -> n

    async def test_live_events_reach_only_matching_subscribers(self):
        server = self.start_server()
        cam1 = await self.subscribe(server, where("camera_id = cam-1"))
        persons = await self.subscribe(server, where("objects.label = person",
                                                     "objects.confidence >= 0.8"))
        everyone = await self.subscribe(server)
        by_id = self.publish_detections(server, 1, 60)
        all_events = await everyone.events(60)
        self.assertEqual([e["id"] for e in all_events], sorted(by_id))
        want_cam1 = [i for i, n in by_id.items() if n % 3 == 1]
        want_persons = [i for i, n in by_id.items() if n % 3 == 0 and 0.5 + (n % 5) / 10 >= 0.8]
        self.assertEqual([e["id"] for e in await cam1.events(len(want_cam1))], want_cam1)
        self.assertEqual([e["id"] for e in await persons.events(len(want_persons))], want_persons)
        await cam1.expect_silence(0.3)
        await persons.expect_silence(0.1)

    async def test_since_and_resume_are_gap_free_within_the_filter(self):
        server = self.start_server()
        by_id = self.publish_detections(server, 1, 700)  # several catch-up pages
        matching = [i for i, n in by_id.items() if n % 3 == 2]
        sub = await self.subscribe(server, "since=0&" + where("camera_id = cam-2"))
        first = await sub.events(100)
        self.assertEqual([e["id"] for e in first], matching[:100])
        await sub.close()
        more = self.publish_detections(server, 701, 760)
        matching += [i for i, n in more.items() if n % 3 == 2]
        resumed = await self.subscribe(server, f"since={first[-1]['id']}&" +
                                       where("camera_id = cam-2"))
        rest = await resumed.events(len(matching) - 100, timeout=15)
        self.assertEqual([e["id"] for e in rest], matching[100:])
        await resumed.expect_silence(0.2)

    async def test_last_counts_only_matching_events(self):
        server = self.start_server()
        by_id = self.publish_detections(server, 1, 900)
        matching = [i for i, n in by_id.items() if n % 3 == 0]
        # 280 matches back is more than one page (256 records) of walking back.
        sub = await self.subscribe(server, "last=280&" + where("objects.label in person,bus"))
        got = await sub.events(280, timeout=15)
        self.assertEqual([e["id"] for e in got], matching[-280:])
        await sub.expect_silence(0.2)
        stream = CurlStream(self.tmpdir, "curl-last", f"{server.url.replace('ws://', 'http://')}"
                            f"/api/events/stream?last=3&{where('big > 1000000000000000000000000000890')}")
        self.children.append(stream)
        want = [i for i, n in by_id.items() if n > 890][-3:]
        await async_wait_for(lambda: len(stream.event_ids()) >= 3, RECV_TIMEOUT,
                             what="3 events on the stream")
        self.assertEqual(stream.event_ids(), want)  # compared exactly, past 64 bits

    async def test_malformed_where_is_refused_with_its_position(self):
        server = self.start_server()
        sub = await self.subscribe(server, where("confidence >> 1"))
        error = await sub.recv()
        self.assertEqual(error.type, "error")
        self.assertEqual(error["message"],
                         'bad where "confidence >> 1" at position 12: expected a value after '
                         'the operator')
        status, _, text = http_request(server, "GET", "/api/events/stream?" +
                                       where("objects.label in"))
        self.assertEqual(status, 400, text)
        self.assertIn('bad where \\"objects.label in\\" at position 16', text)
        # Everyone else keeps being served.
        ok = await self.subscribe(server, where("exists objects"))
        self.post(server, [detection(1)])
        self.assertEqual(len(await ok.events(1)), 1)

    def walk(self, server, path):
        """Follows next from path to the end; returns the ids and the URLs it fetched."""
        ids, urls = [], []
        while path and len(urls) < 500:
            status, _, text = http_request(server, "GET", path)
            self.assertEqual(status, 200, text)
            page = json.loads(text)
            ids += [e["id"] for e in page["events"]]
            urls.append(path)
            path = page["next"]
        self.assertIsNone(path, "more than 500 pages")
        return ids, urls

    async def test_rest_history_where_pages_every_match_once(self):
        server = self.start_server()
        by_id = self.publish_detections(server, 1, 1200)
        expressions = ("objects.label = person", "objects.confidence >= 0.8", "n != 600")
        want = [i for i, n in by_id.items()
                if n % 3 == 0 and 0.5 + (n % 5) / 10 >= 0.8 and n != 600]
        self.assertGreater(len(want), 100)
        ids, urls = self.walk(server, f"/api/events?limit=37&{where(*expressions)}")
        self.assertEqual(ids, want[::-1])  # newest first, each once
        self.assertGreater(len(urls), 3)
        for url in urls[1:]:
            self.assertEqual(url.count("where="), 3, url)  # next keeps the filter
        ids, _ = self.walk(server, f"/api/events?order=asc&limit=1000&topic=events&"
                                   f"after={want[10]}&{where(*expressions)}")
        self.assertEqual(ids, want[11:])
        # Past 64 bits, compared exactly; and a time range with it.
        ids, _ = self.walk(server, "/api/events?since=1h&" +
                           where("big >= 1000000000000000000000000001190"))
        self.assertEqual(ids, [i for i, n in by_id.items() if n >= 1190][::-1])
        status, _, text = http_request(server, "GET", "/api/events?" + where("n > 1", "n >="))
        self.assertEqual(status, 400, text)
        self.assertEqual(json.loads(text)["error"],
                         'bad where "n >=" at position 4: expected a value after the operator')

    async def test_tail_where(self):
        server = self.start_server()
        by_id = self.publish_detections(server, 1, 30)
        want = [i for i, n in by_id.items() if n % 3 == 1 and n > 10][:4]
        tail = self.spawn("tail", "--url", server.url, "--since", "10", "--json", "--count", "4",
                          "--where", "camera_id = cam-1", "--where", "n > 10")
        self.assertEqual(await tail.wait_exit(), 0)
        self.assertEqual([json.loads(line)["id"] for line in tail.lines], want)
        code, out, err = self.cli("tail", "--url", server.url, "--where", "objects.label in")
        self.assertEqual(code, 2)
        self.assertEqual(out, "")
        self.assertIn('bad where "objects.label in" at position 16: expected a value in the in list',
                      err)

    async def test_replay_where_from_a_file_and_from_a_server(self):
        server = self.start_server()
        by_id = self.publish_detections(server, 1, 1200)  # past one 1000-record page
        want = [i for i, n in by_id.items() if n % 3 == 0 and n % 5 == 4]
        for source in (["--db", server.db], ["--url", server.url]):
            code, out, err = self.cli("replay", *source, "--where", "objects.label = person",
                                      "--where", "objects.confidence >= 0.9")
            self.assertEqual(code, 0, err)
            self.assertEqual([json.loads(line)["id"] for line in out.splitlines()], want, source)
        code, out, err = self.cli("replay", "--db", server.db, "--where", "n >")
        self.assertEqual(code, 2)
        self.assertIn('bad where "n >" at position 3', err)
