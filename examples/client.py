#!/usr/bin/python3
"""A minimal evstream subscriber in Python: what every client of /ws/events has to do.

    apt-get install python3-websockets        # Debian 12: version 10.4, asyncio API
    examples/client.py --url ws://localhost:8000 --since 0
    examples/client.py --topic cams --count 10 | jq .data.camera_id

It connects to /ws/events, answers every {"type":"ping"} with {"type":"pong"} (the server closes
clients that stay silent for two ping intervals), prints each event record as one JSON line on
stdout, and after a lost connection reconnects with backoff and `since=<last id seen>`, so nothing
is missed and nothing is printed twice. Without --since it starts from "now": the `last_id` of the
server's first message is the resume point until an event arrives.

Exit status: 0 after --count events (or a closed stdout), 1 when --timeout passes first, 2 for a
usage error, 130 on Ctrl-C.
"""
import argparse
import asyncio
import json
import os
import random
import sys
import urllib.parse

import websockets

PROG = "client.py"


def log(message):
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog=PROG, description="Follow an evstream server's events.")
    parser.add_argument("--url", default=os.environ.get("EVSTREAM_URL", "ws://localhost:8000"),
                        help="server URL (default: $EVSTREAM_URL or ws://localhost:8000)")
    parser.add_argument("--topic", action="append", default=[],
                        help="only this topic (repeatable)")
    parser.add_argument("--since", type=int, default=None,
                        help="start after this event id (0: everything stored); default: now")
    parser.add_argument("--token", default=os.environ.get("EVSTREAM_TOKEN"),
                        help="read token (default: $EVSTREAM_TOKEN)")
    parser.add_argument("--count", type=int, default=0, help="exit after N events")
    parser.add_argument("--timeout", type=float, default=0,
                        help="give up (exit 1) after this many seconds")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="also log each ping answered, on stderr")
    return parser.parse_args(argv)


def events_url(base, topics, since, token):
    base = base.rstrip("/")
    if base.startswith("http"):
        base = "ws" + base[4:]  # http:// -> ws://, https:// -> wss://
    query = [("topic", t) for t in topics]
    if since is not None:
        query.append(("since", str(since)))
    if token:
        query.append(("token", token))
    return f"{base}/ws/events" + (f"?{urllib.parse.urlencode(query)}" if query else "")


class Client:
    def __init__(self, args):
        self.args = args
        self.cursor = args.since  # the id after which the next connection starts
        self.received = 0

    async def run(self):
        backoff = 0.1
        while True:
            url = events_url(self.args.url, self.args.topic, self.cursor, self.args.token)
            shown = url.replace(f"token={self.args.token}", "token=***") if self.args.token else url
            log(f"connecting to {shown}")
            try:
                # The server's JSON pings are the keepalive that matters; the library's own
                # WebSocket pings additionally notice a server that vanished without a close.
                async with websockets.connect(url, open_timeout=10, max_size=2 ** 24,
                                              ping_interval=20, ping_timeout=20) as ws:
                    backoff = 0.1
                    if await self.session(ws):
                        return
            except BrokenPipeError:
                raise  # stdout closed: not a connection problem
            except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException) as e:
                log(f"connection lost: {describe(e)}")
            delay = backoff * random.uniform(0.5, 1.0)
            log(f"reconnecting in {delay:.1f}s (since={self.cursor})")
            await asyncio.sleep(delay)
            backoff = min(backoff * 2, 10.0)

    async def session(self, ws):
        """Reads one connection until it ends; True once --count events were printed."""
        head = 0
        async for raw in ws:
            message = json.loads(raw)
            kind = message.get("type")
            if kind == "ping":
                await ws.send(json.dumps({"type": "pong", "timestamp": message.get("timestamp")}))
                if "connection_id" in message:  # the first message of every connection
                    log(f"connected: connection_id={message['connection_id']} "
                        f"last_id={message.get('last_id')}")
                    head = message.get("last_id", 0)
                    if self.cursor is None:
                        self.cursor = head
                elif self.args.verbose:
                    log("ping answered")
            elif kind == "event":
                if self.cursor is not None and message["id"] <= self.cursor:
                    continue  # never print an id twice
                self.cursor = message["id"]
                sys.stdout.write(raw if raw.endswith("\n") else raw + "\n")
                sys.stdout.flush()
                self.received += 1
                if self.args.count and self.received >= self.args.count:
                    return True
            elif kind == "error":
                text = message.get("message", "")
                log(f"server says: {text}")
                if "above the newest stored id" in text:
                    self.cursor = head  # the store was reset: its ids start again below ours
        log(f"server closed the connection ({ws.close_code} {ws.close_reason or ''})".rstrip())
        return False


def describe(error):
    if isinstance(error, websockets.exceptions.ConnectionClosed):
        return f"closed ({error.code} {error.reason})".replace(" )", ")")
    if isinstance(error, websockets.exceptions.InvalidStatusCode):
        return f"HTTP {error.status_code} (a wrong or missing --token gives 401)"
    if isinstance(error, asyncio.TimeoutError):
        return "timed out"
    return str(error) or type(error).__name__


def quiet_exit(status):
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except OSError:
        pass
    os._exit(status)


async def main_async(args):
    client = Client(args)
    try:
        await asyncio.wait_for(client.run(), args.timeout if args.timeout > 0 else None)
    except asyncio.TimeoutError:
        log(f"--timeout {args.timeout:g}s passed after {client.received} events")
        return 1
    return 0


def main():
    args = parse_args(sys.argv[1:])
    try:
        return asyncio.run(main_async(args))
    except BrokenPipeError:
        quiet_exit(0)
    except KeyboardInterrupt:
        quiet_exit(130)


if __name__ == "__main__":
    sys.exit(main())
