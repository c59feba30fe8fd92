"""/ws/publish: one reply per frame in order (ack once stored, duplicate keys, errors that store
nothing and keep the connection), and data kept byte-for-byte through live and catch-up delivery."""
import json
import unittest

from evtest import ServerTestCase, raw_member, strip_ws

# Frames the server must reject, each with why. None of them may store anything.
BAD_FRAMES = [
    ("invalid JSON", "nope"),
    ("invalid JSON", "{"),
    ("invalid JSON", '{"a":1,}'),
    ("invalid JSON", "{'a':1}"),
    ("invalid JSON", ""),
    ("invalid JSON", '{"a":1} {"b":2}'),
    ("too deep", '{"d":' + "[" * 600 + "]" * 600 + "}"),
    ("not an object", "[1,2]"),
    ("not an object", '"text"'),
    ("not an object", "42"),
    ("not an object", "true"),
    ("not an object", "null"),
    ("bad topic", '{"type":"event","topic":"","data":{}}'),
    ("bad topic", '{"type":"event","topic":"has space","data":{}}'),
    ("bad topic", '{"type":"event","topic":"a/b","data":{}}'),
    ("bad topic", '{"type":"event","topic":"caf\u00e9","data":{}}'),
    ("bad topic", '{"type":"event","topic":"' + "t" * 129 + '","data":{}}'),
    ("bad topic", '{"type":"event","topic":5,"data":{}}'),
    ("bad envelope", '{"type":"event","data":[1,2]}'),
    ("bad envelope", '{"type":"event","data":"x"}'),
    ("bad envelope", '{"type":"event","data":null}'),
    ("bad envelope", '{"type":"event","data":{},"extra":1}'),
    ("bad envelope", '{"type":"event","data":{},"key":""}'),
    ("bad envelope", '{"type":"event","data":{},"key":"' + "k" * 257 + '"}'),
    ("bad envelope", '{"type":"event","data":{},"key":7}'),
    ("binary frame", b'{"a":1}'),
]


def spread(compact):
    """Pretty-ish form of compact JSON: whitespace after every , : { [ outside strings."""
    out = []
    in_string = escaped = False
    for c in compact:
        out.append(c)
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in ",:{[":
            out.append("\n \t ")
    return " \r\n" + "".join(out) + " \n"


class PublishRepliesTest(ServerTestCase):

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.server = self.start_server()

    async def test_ack_once_stored(self):
        live = await self.subscribe(self.server)
        pub = await self.publisher(self.server)
        bare = await pub.publish({"camera_id": "cam-1", "n": 1})
        self.assertEqual(bare.obj, {"type": "ack", "id": 1})
        envelope = await pub.publish({"type": "event", "topic": "detections", "data": {"n": 2}})
        self.assertEqual(envelope.obj, {"type": "ack", "id": 2})
        # Once acked it is in the store: a since=0 subscriber catches it up from there.
        stored = await self.subscribe(self.server, "since=0")
        self.assertEqual(stored.last_id, 2)
        for sub in (stored, live):
            first, second = await sub.events(2)
            self.assertEqual((first["id"], first["topic"], first["data"]),
                             (1, "events", {"camera_id": "cam-1", "n": 1}))
            self.assertEqual((second["id"], second["topic"], second["data"]),
                             (2, "detections", {"n": 2}))

    async def test_duplicate_key_acks_first_id_and_stores_once(self):
        live = await self.subscribe(self.server)
        pub = await self.publisher(self.server)
        first = await pub.publish({"type": "event", "key": "k1", "data": {"v": 1}})
        self.assertEqual(first.obj, {"type": "ack", "id": 1})
        again = await pub.publish({"type": "event", "key": "k1", "data": {"v": 2}})
        self.assertEqual(again.obj, {"type": "ack", "id": 1, "duplicate": True})
        other = await pub.publish({"type": "event", "key": "k2", "data": {"v": 3}})
        self.assertEqual(other.obj, {"type": "ack", "id": 2})
        # The key is remembered across connections, and across topics of the same key.
        pub2 = await self.publisher(self.server)
        third = await pub2.publish({"type": "event", "key": "k1", "topic": "t", "data": {"v": 4}})
        self.assertEqual(third.obj, {"type": "ack", "id": 1, "duplicate": True})
        sentinel = await pub.publish({"sentinel": True})
        self.assertEqual(sentinel["id"], 3)
        got = await live.events(3)
        self.assertEqual([(e["id"], e["data"]) for e in got],
                         [(1, {"v": 1}), (2, {"v": 3}), (3, {"sentinel": True})])

    async def test_rejected_frames_get_an_error_store_nothing_and_keep_the_connection(self):
        live = await self.subscribe(self.server)
        pub = await self.publisher(self.server)
        self.assertEqual((await pub.publish({"before": True}))["id"], 1)
        for why, frame in BAD_FRAMES:
            reply = await pub.publish(frame)
            self.assertEqual(reply.type, "error", f"{why}: {frame[:60]!r} -> {reply}")
            self.assertEqual(set(reply.obj), {"type", "message"}, reply)
            self.assertTrue(reply["message"], reply)
        # Limits that are still fine: a 128-char topic and a 256-byte key.
        ok = await pub.publish({"type": "event", "topic": "T" * 128, "key": "k" * 256,
                                "data": {"after": True}})
        self.assertEqual(ok.obj, {"type": "ack", "id": 2}, "a rejected frame must store nothing")
        got = await live.events(2)
        self.assertEqual([(e["id"], e["data"]) for e in got],
                         [(1, {"before": True}), (2, {"after": True})])
        self.assertEqual(got[1]["topic"], "T" * 128)
        self.assertEqual(self.server.find_log("disconnect"), [], "every connection stays open")

    async def test_pipelined_frames_get_one_reply_each_in_order(self):
        live = await self.subscribe(self.server)
        pub = await self.publisher(self.server)
        frames, expected = [], []
        next_id = 1
        key_ids = {}
        for n in range(1000):
            if n % 37 == 5:
                frames.append(BAD_FRAMES[(n // 37) % len(BAD_FRAMES)][1])
                expected.append(("error", None, False))
            elif n % 100 == 99:  # repeat the key of an earlier accepted frame
                key = next(f"key-{m}" for m in range(n - 50, -1, -1) if f"key-{m}" in key_ids)
                frames.append({"type": "event", "key": key, "data": {"n": n}})
                expected.append(("ack", key_ids[key], True))
            else:
                key = f"key-{n}"
                frames.append({"type": "event", "key": key, "topic": f"t{n % 3}", "data": {"n": n}})
                key_ids[key] = next_id
                expected.append(("ack", next_id, False))
                next_id += 1
        replies = await pub.pipeline(frames, timeout=60)
        got = [(r.type, r.get("id"), r.get("duplicate", False)) for r in replies]
        self.assertEqual(len(got), len(expected))
        for n, (g, e) in enumerate(zip(got, expected)):
            self.assertEqual(g, e, f"reply {n} to frame {frames[n]!r:.80}")
        # Subscribers see each stored event once, in id order.
        events = await live.events(next_id - 1, timeout=20)
        self.assertContiguous([e["id"] for e in events], 1, next_id - 1)
        await live.expect_silence(0.2)


# Data the server must keep digit-for-digit and escape-for-escape (whitespace aside).
FIDELITY_DATA = [
    '{"big":123456789012345678901234567890123456789,"neg":-98765432109876543210,'
    '"u64":18446744073709551615,"i64min":-9223372036854775808,"zero":0}',
    '{"pi":3.14159265358979323846264338327950288419716939937510582097494459,'
    '"tiny":1e-400,"max":1.7976931348623157e308,"negzero":-0.0,"t":0.10000000000000000000001,'
    '"e":2.50e10,"trailing":100.000,"exp":1E2,"small":5e-324}',
    '{"fr":"h\u00e9llo w\u00f6rld","ja":"\u65e5\u672c\u8a9e","emoji":"\U0001f600\U0001f44d\U0001f3fd'
    '\U0001f1eb\U0001f1f7\U0001f468\u200d\U0001f469\u200d\U0001f467","rtl":"\u05e2\u05d1\u05e8\u05d9\u05ea",'
    '"esc":"\\u00e9\\ud83d\\ude00\\n\\t\\"\\\\\\/\\u0000","spaces":"  inside  strings  stay  ",'
    '"\u00e9t\u00e9":"key with unicode"}',
    '{"deep":' + '[{"k":' * 120 + '"bottom"' + '}]' * 120 + '}',
    '{"empty_obj":{},"empty_arr":[],"lits":[null,true,false],'
    '"nested":{"a":{"b":{"c":[1,[2,[3,{"d":"e"}]]]}}},"order":{"z":1,"a":2,"m":3}}',
]


class DataFidelityTest(ServerTestCase):

    async def test_data_is_kept_byte_for_byte(self):
        server = self.start_server()
        live = await self.subscribe(server)
        pub = await self.publisher(server)
        sent = {}
        for text in FIDELITY_DATA:
            # Bare object with whitespace everywhere, and the same inside an envelope.
            for frame in (spread(text), '{"type":"event","topic":"f","data":' + spread(text) + "}"):
                reply = await pub.publish(frame)
                self.assertEqual(reply.type, "ack", f"{frame[:80]!r} -> {reply}")
                sent[reply["id"]] = text
        caught_up = await self.subscribe(server, "since=0")
        for name, sub in (("live", live), ("catch-up", caught_up)):
            events = await sub.events(len(sent))
            self.assertEqual([e["id"] for e in events], sorted(sent))
            for event in events:
                data = raw_member(event.raw, "data")
                self.assertEqual(strip_ws(data), strip_ws(sent[event["id"]]),
                                 f"{name} event {event['id']}")
                # And the frame itself is valid JSON whose data parses to the same value.
                self.assertEqual(event["data"], json.loads(sent[event["id"]]))

    async def test_numbers_beyond_double_range_are_kept(self):
        # SPEC "Data model": numbers of any size keep their digits. JSON has no range limit, and
        # the server never needs the value, only the text.
        server = self.start_server()
        pub = await self.publisher(server)
        texts = ['{"huge":1.5E+400}', '{"neg":-1e400}', '{"int400":1' + "0" * 400 + "}"]
        for text in texts:
            reply = await pub.publish(text)
            self.assertEqual(reply.type, "ack", f"{text[:40]} -> {reply}")
        sub = await self.subscribe(server, "since=0")
        for text, event in zip(texts, await sub.events(len(texts))):
            self.assertEqual(strip_ws(raw_member(event.raw, "data")), text)


if __name__ == "__main__":
    unittest.main()
