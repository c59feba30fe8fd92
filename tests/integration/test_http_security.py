"""Security of serve: --token / EVSTREAM_TOKEN guard publishing (HTTP and /ws/publish),
--read-token guards reading (REST, /metrics, /ws/events), --allow-origin restricts browsers
(WebSocket 403, CORS on HTTP), and --cert/--key serve https and wss. 127.0.0.1 only."""
import asyncio
import base64
import json
import os
import re
import socket
import ssl
import subprocess
import unittest

import test_http_api as api  # the module, not its classes: unittest would run them again here
from evtest import HOST, ServerProcess

PUBLISH = "pub-s3cret-token"
READ = "read-t0ken"


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def upgrade_status(port, path, headers=None, timeout=5):
    """The HTTP status a WebSocket upgrade request gets (101 when accepted), read off the wire so
    that any refusal status line is seen whatever a client library thinks of it."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1", f"Host: {HOST}:{port}", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        response = b""
        while b"\r\n" not in response:
            chunk = sock.recv(4096)
            if not chunk:
                break
            response += chunk
    match = re.match(rb"HTTP/1\.[01] (\d{3})", response)
    if not match:
        raise AssertionError(f"no HTTP status line in {response[:100]!r}")
    return int(match.group(1))


class AuthTest(api.HttpTestCase):
    async def expect_ws_status(self, url, status, headers=None):
        port, path = re.match(r"wss?://[^:]+:(\d+)(/.*)", url).groups()
        self.assertEqual(upgrade_status(int(port), path, headers), status, url)

    async def test_publish_token_guards_publishing(self):
        server = self.start_server("--token", PUBLISH)
        for headers in [{}, bearer("wrong"), bearer(PUBLISH + "x"), {"Authorization": PUBLISH}]:
            _, resp_headers, body = self.call(server, "POST", "/api/events", '{"a":1}', headers,
                                              expect=401)
            self.assertIn("token", body["error"])
            self.assertTrue(resp_headers["content-type"].startswith("application/json"))
            self.assertIn("Bearer", resp_headers["www-authenticate"])
        self.assertEqual(self.post(server, '{"a":1}', bearer(PUBLISH)), {"id": 1})
        self.assertEqual(self.call(server, "POST", f"/api/events?token={PUBLISH}", '{"a":2}',
                                   expect=201)[2], {"id": 2})
        # Reading stays open when no read token is set.
        self.assertEqual(len(self.get(server, "/api/events")["events"]), 2)
        # WebSocket publishing: refused with 401 at the upgrade, accepted with either form.
        await self.expect_ws_status(f"{server.url}/ws/publish", 401)
        await self.expect_ws_status(f"{server.url}/ws/publish?token=nope", 401)
        pub = await self.publisher(server, extra_headers=bearer(PUBLISH))
        self.assertEqual((await pub.publish({"c": 3})).type, "ack")
        ws = await self.ws(f"{server.url}/ws/publish?token={PUBLISH}")
        await ws.send('{"d":4}')
        self.assertEqual(json.loads(await asyncio.wait_for(ws.recv(), 5))["type"], "ack")
        sub = await self.subscribe(server)  # subscribing needs nothing here
        self.assertEqual(sub.last_id, 4)
        # The token never reaches the log.
        self.assertNotIn(PUBLISH, server.log_text())
        self.assertTrue(server.find_log("refused", status="401"))

    async def test_read_token_guards_reading(self):
        server = self.start_server("--token", PUBLISH, "--read-token", READ)
        self.post(server, '{"camera_id":"c1"}', bearer(PUBLISH))
        for path in ["/api/events", "/api/events/1", "/metrics"]:
            self.call(server, "GET", path, expect=401)
            self.call(server, "GET", path, headers=bearer("wrong"), expect=401)
            self.call(server, "GET", path, headers=bearer(READ), expect=200)
            self.call(server, "GET", path + ("&" if "?" in path else "?") + f"token={READ}",
                      expect=200)
            self.call(server, "GET", path, headers=bearer(PUBLISH), expect=200)  # writers read
        # The read token does not publish.
        self.call(server, "POST", "/api/events", '{"a":1}', bearer(READ), expect=401)
        # Health stays open but says only that the server is up.
        health = self.get(server, "/api/health")
        self.assertEqual(set(health), {"status", "version", "uptime_s"})
        full = self.call(server, "GET", "/api/health", headers=bearer(READ), expect=200)[2]
        self.assertEqual(full["last_event_id"], 1)
        # The page and the API description are not secret.
        self.call(server, "GET", "/", expect=200)
        self.call(server, "GET", "/api/openapi.json", expect=200)
        # WebSocket subscribers.
        await self.expect_ws_status(f"{server.url}/ws/events", 401)
        await self.expect_ws_status(f"{server.url}/ws/events?token=wrong&last=5", 401)
        sub = await self.subscribe(server, f"token={READ}&last=5")
        [event] = await sub.events(1)
        self.assertEqual(event["id"], 1)
        sub = await self.subscribe(server, "last=1", extra_headers=bearer(READ))
        self.assertEqual((await sub.events(1))[0]["id"], 1)
        for text in (PUBLISH, READ):
            self.assertNotIn(text, server.log_text())

    async def test_token_from_environment(self):
        os.environ["EVSTREAM_TOKEN"] = PUBLISH
        try:
            server = self.start_server()
        finally:
            del os.environ["EVSTREAM_TOKEN"]
        self.call(server, "POST", "/api/events", '{"a":1}', expect=401)
        self.assertEqual(self.post(server, '{"a":1}', bearer(PUBLISH)), {"id": 1})


class OriginTest(api.HttpTestCase):
    async def test_allow_origin(self):
        server = self.start_server("--allow-origin", "https://ops.example",
                                   "--allow-origin", "http://localhost:3000")
        self.assertEqual(upgrade_status(server.port, "/ws/events",
                                        {"Origin": "https://evil.example"}), 403)
        for origin in ["https://ops.example", "http://localhost:3000",
                       f"http://127.0.0.1:{server.port}"]:  # the dashboard's own origin
            sub = await self.subscribe(server, origin=origin)
            self.assertEqual(sub.first.type, "ping")
        await self.subscribe(server)  # no Origin: not a browser
        # HTTP: CORS headers for allowed origins, 403 for others.
        _, headers, _ = self.call(server, "GET", "/api/events",
                                  headers={"Origin": "https://ops.example"}, expect=200)
        self.assertEqual(headers["access-control-allow-origin"], "https://ops.example")
        self.assertEqual(headers["vary"], "Origin")
        _, _, body = self.call(server, "GET", "/api/events",
                               headers={"Origin": "https://evil.example"}, expect=403)
        self.assertIn("origin", body["error"])
        self.call(server, "POST", "/api/events", '{"a":1}',
                  headers={"Origin": "https://evil.example"}, expect=403)
        _, headers, _ = self.call(server, "OPTIONS", "/api/events", headers={
            "Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"}, expect=204)
        self.assertEqual(headers["access-control-allow-origin"], "http://localhost:3000")
        self.assertIn("POST", headers["access-control-allow-methods"])
        self.assertIn("Authorization", headers["access-control-allow-headers"])

    async def test_any_origin_by_default(self):
        server = self.start_server()
        sub = await self.subscribe(server, origin="https://anywhere.example")
        self.assertEqual(sub.first.type, "ping")
        _, headers, _ = self.call(server, "GET", "/api/events",
                                  headers={"Origin": "https://anywhere.example"}, expect=200)
        self.assertNotIn("access-control-allow-origin", headers)  # no CORS unless asked


class TlsTest(api.HttpTestCase):
    def make_cert(self):
        cert = os.path.join(self.tmpdir, "cert.pem")
        key = os.path.join(self.tmpdir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                        "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1"],
                       check=True, capture_output=True, timeout=60)
        return cert, key

    async def test_https_and_wss(self):
        cert, key = self.make_cert()
        # The shared ServerProcess accepts the wss:// URL line a TLS server prints.
        server = ServerProcess(self.tmpdir, ["--cert", cert, "--key", key, "--token", PUBLISH],
                               name="tls")
        self.servers.append(server)
        server.start()
        self.assertTrue(server.url.startswith("wss://"))
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        status, headers, text = api.http_request(server, "POST", "/api/events", '{"tls":true}',
                                                 bearer(PUBLISH), context=context)
        self.assertEqual((status, json.loads(text)), (201, {"id": 1}))
        status, _, text = api.http_request(server, "GET", "/api/events/1", context=context)
        self.assertEqual(json.loads(text)["data"], {"tls": True})
        status, _, page = api.http_request(server, "GET", "/", context=context)
        self.assertEqual(status, 200)
        sub = await self.subscribe(server, "since=0", ssl=context)
        self.assertEqual((await sub.events(1))[0]["id"], 1)
        pub = await self.publisher(server, ssl=context, extra_headers=bearer(PUBLISH))
        self.assertEqual((await pub.publish({"over": "wss"})).type, "ack")
        self.assertEqual((await sub.events(1))[0]["id"], 2)
        # Plain HTTP on the TLS port gets nowhere.
        with self.assertRaises(Exception):
            api.http_request(server, "GET", "/api/health", timeout=3)


if __name__ == "__main__":
    unittest.main()
