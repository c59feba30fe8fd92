"""Real nats-server processes for the cluster tests: one JetStream server, or a cluster of them
with routes, on free loopback ports with their own store dirs. Every wait has a deadline; only the
PIDs started here are ever signalled.

Also a minimal NATS request over a plain socket (the text protocol), so a test can talk to the
JetStream API directly (create a conflicting stream, read a stream's state) without a client
library that Debian does not ship for Python.
"""
import json
import os
import socket
import subprocess
import time

from evtest import HOST, free_port, require_tool, wait_for

READY_TIMEOUT = 15.0  # seconds for nats-server (and a cluster's JetStream meta leader) to be up


class NatsServer:
    """One `nats-server -js` child on loopback; restartable on the same port and store dir."""

    def __init__(self, workdir, name="nats", port=None, cluster_port=None, routes=(),
                 cluster_name="evstream-test"):
        self.binary = require_tool("nats-server")
        self.name = name
        self.port = port or free_port()
        self.cluster_port = cluster_port
        self.routes = list(routes)
        self.cluster_name = cluster_name
        self.store_dir = os.path.join(workdir, f"{name}-js")
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.proc = None

    @property
    def url(self):
        return f"nats://{HOST}:{self.port}"

    def start(self):
        cmd = [self.binary, "-js", "-a", HOST, "-p", str(self.port), "-sd", self.store_dir,
               "-n", self.name]
        if self.cluster_port:
            cmd += ["--cluster_name", self.cluster_name,
                    "--cluster", f"nats://{HOST}:{self.cluster_port}",
                    "--routes", ",".join(self.routes)]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        wait_for(lambda: "Server is ready" in self.log_text() or not self.running(),
                 READY_TIMEOUT, interval=0.02, what=f"{self.name} to be ready")
        if not self.running():
            raise AssertionError(f"nats-server exited at startup: {self.log_text()[-2000:]}")
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def kill(self):
        """kill -9 this nats-server and reap it."""
        if self.running():
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(timeout=10)

    def stop(self):
        if self.running():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def nats_cluster(workdir, size=3):
    """`size` JetStream servers routed to each other; started, with a JetStream meta leader."""
    ports = [free_port() for _ in range(size)]
    cluster_ports = [free_port() for _ in range(size)]
    routes = [f"nats://{HOST}:{p}" for p in cluster_ports]
    servers = [NatsServer(workdir, name=f"nats{i + 1}", port=ports[i],
                          cluster_port=cluster_ports[i], routes=routes) for i in range(size)]
    for server in servers:
        server.start()
    # JetStream answers API requests once the servers elected a meta leader, but a leader elected
    # by a quorum may not know the last peer yet: then an R`size` stream has "no suitable peers
    # for placement" (seen under load). Ready means such a stream can be placed.
    wait_for(lambda: jetstream_ready(servers[0].port), READY_TIMEOUT, interval=0.1,
             what="the NATS cluster's JetStream meta leader")
    wait_for(lambda: replicas_placeable(servers[0].port, size), READY_TIMEOUT, interval=0.1,
             what=f"the NATS cluster to place a stream on all {size} servers")
    return servers


def replicas_placeable(port, replicas):
    """Creates and deletes a probe stream with `replicas` replicas; whether that worked."""
    config = {"name": "EVSTREAM_TEST_PROBE", "subjects": ["evstream_test.probe"],
              "storage": "memory", "num_replicas": replicas}
    try:
        created = jetstream_api(port, "STREAM.CREATE.EVSTREAM_TEST_PROBE", config)
        if "error" in created:
            return False
        deleted = jetstream_api(port, "STREAM.DELETE.EVSTREAM_TEST_PROBE")
    except (OSError, AssertionError, ValueError):
        return False
    return "error" not in deleted


def nats_request(port, subject, payload=b"", timeout=5.0):
    """One request/reply over the NATS text protocol; the reply's payload (bytes)."""
    deadline = time.monotonic() + timeout
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        reader = sock.makefile("rb")
        reader.readline()  # INFO {...}
        inbox = "_INBOX.evstream_test"
        sock.sendall(b'CONNECT {"verbose":false,"pedantic":false,"headers":true}\r\n'
                     + f"SUB {inbox} 1\r\n".encode()
                     + f"PUB {subject} {inbox} {len(payload)}\r\n".encode() + payload + b"\r\n"
                     + b"PING\r\n")
        while time.monotonic() < deadline:
            line = reader.readline()
            if not line:
                raise AssertionError(f"NATS closed the connection during request {subject}")
            if line.startswith(b"PING"):
                sock.sendall(b"PONG\r\n")
            elif line.startswith(b"MSG "):
                size = int(line.split()[-1])
                data = reader.read(size + 2)[:size]
                return data
            elif line.startswith(b"HMSG "):
                parts = line.split()
                header_size, total = int(parts[-2]), int(parts[-1])
                data = reader.read(total + 2)[:total]
                return data[header_size:]
            elif line.startswith(b"-ERR"):
                raise AssertionError(f"NATS error on {subject}: {line!r}")
        raise AssertionError(f"no reply to {subject} within {timeout}s")


def jetstream_api(port, subject, request=None):
    """A JetStream API call ($JS.API.<subject>) as JSON in, JSON out."""
    payload = json.dumps(request).encode() if request is not None else b""
    return json.loads(nats_request(port, f"$JS.API.{subject}", payload) or b"{}")


def jetstream_ready(port):
    try:
        info = jetstream_api(port, "INFO")
    except (OSError, AssertionError, ValueError):
        return False
    return "error" not in info
