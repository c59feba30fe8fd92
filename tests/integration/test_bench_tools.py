"""The second benchmark generator, bench/ws_latency.js (Node's ws, not this project's client),
against a real server: every event reaches every subscriber and the report adds up."""
import json
import os
import subprocess
import unittest

from evtest import ServerTestCase, require_tool

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "bench", "ws_latency.js")


class WsLatencyTest(ServerTestCase):

    def test_reports_every_delivery(self):
        node = require_tool("node")
        server = self.start_server()
        env = dict(os.environ, NODE_PATH="/usr/share/nodejs")
        run = subprocess.run([node, SCRIPT, "--url", server.url, "--clients", "5", "--rate", "20",
                              "--size", "300", "--duration", "1"],
                             capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(run.returncode, 0, run.stderr)
        report = json.loads(run.stdout)
        self.assertEqual((report["published"], report["acked"]), (20, 20))
        self.assertEqual((report["expected"], report["received"], report["lost"]), (100, 100, 0))
        self.assertLessEqual(report["p50_us"], report["p99_us"])
        self.assertLessEqual(report["p99_us"], report["max_us"])
        self.assertGreater(report["p50_us"], 0)
        self.assertEqual(len(server.find_log("connect", path="/ws/events")), 5)

    def test_bad_option_is_one_line_and_exit_1(self):
        node = require_tool("node")
        run = subprocess.run([node, SCRIPT, "--clients"], capture_output=True, text=True,
                             timeout=30, env=dict(os.environ, NODE_PATH="/usr/share/nodejs"))
        self.assertEqual(run.returncode, 1)
        self.assertEqual(run.stderr, "ws_latency: bad option --clients\n")


if __name__ == "__main__":
    unittest.main()
