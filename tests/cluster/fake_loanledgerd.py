#!/usr/bin/env python3
"""A stand-in for loanledgerd in cluster mode, to test scripts/cluster.sh on
its own (tests/cluster/cluster_script_test.py): takes the cluster flags,
checks that --nats reaches a NATS server, binds --listen and --metrics-listen
(port 0: any), writes the --ready-file atomically (pid=, listen=, metrics=),
serves /metrics with loanledger_cluster_is_leader (1 on replica 1 of each
partition), and exits 0 on SIGTERM. FAKE_LLD_FAIL=NODE makes node NODE exit 3
at start-up.
"""
import argparse
import http.server
import os
import signal
import socket
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "support"))
from nats_client import NatsClient  # noqa: E402


def bind(address):
    host, port = address.rsplit(":", 1)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asio's acceptor (loanledgerd) does
    try:
        s.bind((host, int(port)))
    except OSError as e:
        print(f"cannot listen on {address}: {e.strerror}", file=sys.stderr, flush=True)
        sys.exit(1)
    s.listen(16)
    return s


def main():
    p = argparse.ArgumentParser()
    for flag in ("--nats", "--node", "--listen", "--metrics-listen", "--data", "--tokens", "--ready-file"):
        p.add_argument(flag, required=True)
    for flag in ("--partition", "--partitions", "--replicas"):
        p.add_argument(flag, type=int, required=True)
    a = p.parse_args()
    if os.environ.get("FAKE_LLD_FAIL") == a.node:
        print(f"fake loanledgerd {a.node}: failing at start-up as asked", file=sys.stderr, flush=True)
        sys.exit(3)
    assert 0 <= a.partition < a.partitions and a.replicas == 3 and os.path.isfile(a.tokens)
    with NatsClient(a.nats) as nc:
        print(f"{a.node}: connected to NATS {nc.url}", file=sys.stderr, flush=True)
    listener = bind(a.listen)
    leader = 1 if a.node.endswith("-1") else 0
    body = (f"# TYPE loanledger_cluster_is_leader gauge\n"
            f"loanledger_cluster_is_leader{{partition=\"{a.partition}\"}} {leader}\n").encode()

    class Metrics(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    metrics_sock = bind(a.metrics_listen)
    server = http.server.HTTPServer(metrics_sock.getsockname(), Metrics, bind_and_activate=False)
    server.socket.close()
    server.socket = metrics_sock
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def accept():
        while True:
            conn, _ = listener.accept()
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    host, port = listener.getsockname()
    mhost, mport = metrics_sock.getsockname()
    tmp = f"{a.ready_file}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(f"pid={os.getpid()}\nlisten={host}:{port}\nmetrics={mhost}:{mport}\n")
    os.replace(tmp, a.ready_file)
    print(f"{a.node}: listening on {host}:{port}", file=sys.stderr, flush=True)
    signal.sigwait([signal.SIGTERM, signal.SIGINT])
    print(f"{a.node}: stopping", file=sys.stderr, flush=True)


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM, signal.SIGINT])
    main()
