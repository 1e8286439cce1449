#!/usr/bin/env python3
"""Self-test of tests/support/ll_server.py's parts that no other test runs:
start_nats_server (two at once get different kernel-chosen ports, each
answers the NATS protocol and its monitoring endpoint, each stops by its PID)
and read_ready_file / port_of. loanledgerd and Prometheus through the module
are covered by tests/e2e and tests/deploy.

usage: ll_server_test.py   (nats-server on PATH, or NATS_SERVER=path)
"""
import os
import socket
import sys
import tempfile
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ll_server  # noqa: E402


class ReadyFileTest(unittest.TestCase):
    def test_reads_names_and_values(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "ready")
            self.assertIsNone(ll_server.read_ready_file(path))
            with open(path, "w") as f:
                f.write("pid=12\nmetrics=127.0.0.1:9464\nlisten=[::1]:7700\n")
            r = ll_server.read_ready_file(path)
            self.assertEqual(r, {"pid": "12", "metrics": "127.0.0.1:9464", "listen": "[::1]:7700"})
            self.assertEqual(ll_server.port_of(r["listen"]), 7700)


class NatsServerTest(unittest.TestCase):
    def test_two_servers_on_kernel_chosen_ports(self):
        with tempfile.TemporaryDirectory() as d:
            servers = [ll_server.start_nats_server(os.path.join(d, f"n{k}"), timeout_s=20) for k in (1, 2)]
            try:
                ports = set()
                for s in servers:
                    self.assertTrue(s.client_url.startswith("nats://127.0.0.1:"), s.client_url)
                    port = ll_server.port_of(s.client_url)
                    ports |= {port, ll_server.port_of(s.monitoring_url)}
                    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                        self.assertTrue(c.recv(4096).startswith(b"INFO "))
                    with urllib.request.urlopen(s.monitoring_url + "/varz", timeout=5) as r:
                        self.assertEqual(r.status, 200)
                self.assertEqual(len(ports), 4)
            finally:
                for s in servers:
                    s.stop(timeout_s=20)
            for s in servers:
                self.assertFalse(s.running())


if __name__ == "__main__":
    unittest.main()
