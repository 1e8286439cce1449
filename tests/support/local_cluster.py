#!/usr/bin/env python3
"""A local loanledger cluster on 127.0.0.1 (deploy/README.md, "Cluster: three machines"):
3 nats-server forming one JetStream cluster (nats_cluster.py) and P x R
loanledgerd in cluster mode. scripts/cluster.sh is this file's command line;
tests use the LocalCluster class.

    scripts/cluster.sh up DIR [--tokens FILE] [--partitions P] [--replicas R] [--partition-map FILE]
                           [--http]
    scripts/cluster.sh down DIR

DIR layout:
    cluster.json          partitions, replicas, tokens file, map, http (P is fixed when DIR is created)
    cluster.env           LOANLEDGER_SERVER, NATS_URLS, METRICS, and HTTP with --http (shell
                          assignments, exported)
    nodes.json            every loanledgerd: name, partition, replica, pid, client, metrics
    tokens                (without --tokens) the tokens file, with admin.token and regulator.token
    pids/nats-K.pid       K = 1, 2, 3
    pids/ll-P-R.pid       P = partition 0..P-1, R = replica 1..R
    nats-K/               nats.conf, nats.log, ports.json, js/ (JetStream store)
    ll-P-R/               data/, loanledgerd.log, ready (its --ready-file), ports.json

Binaries: LOANLEDGER_BIN_DIR (default: the repository's build/) is a build
directory, so loanledgerd is BIN_DIR/server/loanledgerd and the CLI
BIN_DIR/client/loanledger; a directory holding both binaries directly (an
install prefix's bin/) works too. NATS_SERVER overrides `nats-server`.

loanledgerd flags: `--nats URLS --node ll-P-R --partition P --partitions P
--replicas 3` (URLS: every NATS server, node ll-P-R's "own" server
((R - 1) mod 3) + 1 first, which loanledgerd tries first; JetStream stream
replicas: the 3 NATS servers; not this script's --replicas, which is
loanledgerd replicas per partition), `--listen
127.0.0.1:PORT --metrics-listen 127.0.0.1:PORT --data --tokens --ready-file`,
and with --http (kept for later `up`s of the DIR) `--http-listen 127.0.0.1:0`:
every node serves the HTTP API and the regulator console (docs/http.md), on
the port it had the last time too.
PORT is 0 the first time (the kernel picks it; the ready file reports it) and
the port bound last time on the next `up` of the same DIR, so that
cluster.env stays valid; a port taken meanwhile is replaced by a new one.

`up` returns once every loanledgerd has written its ready file and, if the
binary exports loanledger_cluster_is_leader, once each partition has exactly
one leader; at most LOANLEDGER_CLUSTER_WAIT_S seconds (default 120), else it
stops what it started and exits 1 with the failing node's log tail. `up` on a
DIR holding a stopped or killed cluster (or a part of one) starts what is not
running, on its data. `down` sends SIGTERM to every pid file's process
(loanledgerd first, then NATS), waits at most LOANLEDGER_STOP_WAIT_S seconds
(default 60) and then sends SIGKILL with a warning.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nats_cluster import (POLL_S, ClusterError, NatsCluster, log_tail, pid_alive,  # noqa: E402
                          pid_cmdline, read_pid_file, wait_pid_exit, write_file_atomic)

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
HOST = "127.0.0.1"
JETSTREAM_REPLICAS = 3  # one stream replica per NATS server
START_ATTEMPTS = 3      # per loanledgerd, when a remembered port was taken meanwhile
WAIT_S = float(os.environ.get("LOANLEDGER_CLUSTER_WAIT_S", "120"))
STOP_WAIT_S = float(os.environ.get("LOANLEDGER_STOP_WAIT_S", "60"))
IS_LEADER = "loanledger_cluster_is_leader"


def warn(msg):
    print(f"cluster.sh: warning: {msg}", file=sys.stderr, flush=True)


def find_binary(bin_dir, sub, name):
    for path in (os.path.join(bin_dir, sub, name), os.path.join(bin_dir, name)):
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise ClusterError(f"no {name} in {bin_dir}/{sub}/ or {bin_dir}/ (LOANLEDGER_BIN_DIR); "
                       f"build it: scripts/build.sh loanledgerd loanledger")


def stop_all(targets, timeout_s):
    """targets: [(name, pid, proc or None)]. SIGTERM to all, one shared bounded wait, then SIGKILL."""
    for name, pid, _ in targets:
        try:
            os.kill(pid, signal.SIGCONT)  # a paused process cannot handle SIGTERM
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout_s
    clean = True
    for name, pid, proc in targets:
        if not wait_pid_exit(pid, max(0.0, deadline - time.monotonic()), proc):
            warn(f"{name} (pid {pid}) still running {timeout_s:.0f} s after SIGTERM: SIGKILL")
            clean = False
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            wait_pid_exit(pid, 10.0, proc)
    return clean


def new_token(cli, *args):
    """`loanledger token new ARGS`: (the client's token, the line for the server's tokens file)."""
    out = subprocess.run([cli, "token", "new", *args], capture_output=True, text=True, check=True,
                         timeout=30).stdout.splitlines()
    return out[0], out[1]


def fnv1a64(text):
    """FNV-1a 64 of the text's UTF-8 bytes: an institution's default partition is fnv1a64(name) % P
    (docs/cluster.md, "Partitions")."""
    h = 0xcbf29ce484222325
    for b in text.encode():
        h ^= b
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def scrape(metrics_address, timeout_s=2.0):
    """{sample line without value: value} of a /metrics page."""
    with urllib.request.urlopen(f"http://{metrics_address}/metrics", timeout=timeout_s) as r:
        text = r.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            try:
                samples[key] = float(value)
            except ValueError:
                pass
    return samples


class LoanledgerNode:
    """One loanledgerd replica of one partition: DIR/ll-P-R/, DIR/pids/ll-P-R.pid."""

    def __init__(self, root, partition, replica):
        self.partition, self.replica = partition, replica
        self.name = f"ll-{partition}-{replica}"
        self.dir = os.path.join(root, self.name)
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "loanledgerd.log")
        self.ready = os.path.join(self.dir, "ready")
        self.ports_json = os.path.join(self.dir, "ports.json")
        self.pid_file = os.path.join(root, "pids", f"{self.name}.pid")
        self.proc = None
        self._log_offset = 0
        self.addresses = {}  # from the ready file: listen, metrics, ...
        self.ports = {"listen": 0, "metrics": 0}
        try:
            with open(self.ports_json) as f:
                self.ports.update(json.load(f))
        except FileNotFoundError:
            pass

    def pid(self):
        if self.proc is not None and self.proc.poll() is None:
            return self.proc.pid
        pid = read_pid_file(self.pid_file)
        if pid is None or not pid_alive(pid):
            return None
        cmd = pid_cmdline(pid)
        # cmd[1]: a script run by its interpreter (the tests' stand-in loanledgerd).
        if not any("loanledgerd" in os.path.basename(a) for a in cmd[:2]) or self.data not in cmd:
            return None  # the PID was reused by another process
        return pid

    def running(self):
        return self.pid() is not None

    def read_ready(self, pid):
        """The ready file's NAME=HOST:PORT lines if process `pid` wrote it, else None."""
        try:
            with open(self.ready) as f:
                lines = dict(line.strip().split("=", 1) for line in f if "=" in line)
        except FileNotFoundError:
            return None
        if lines.get("pid") != str(pid):
            return None  # an earlier run's
        return {k: v for k, v in lines.items() if k != "pid"}

    def load_addresses(self):
        """The addresses of a node that was already running (started by an earlier `up`)."""
        pid = self.pid()
        self.addresses = (self.read_ready(pid) if pid else None) or {}

    def spawn(self, binary, nats_urls, partitions, tokens, partition_map=None, extra=(), *, http=False):
        assert not self.running(), f"{self.name} already runs"
        os.makedirs(self.data, exist_ok=True)
        os.makedirs(os.path.dirname(self.pid_file), exist_ok=True)
        if os.path.exists(self.ready):
            os.unlink(self.ready)
        cmd = [binary, "--nats", nats_urls, "--node", self.name,
               "--partition", str(self.partition), "--partitions", str(partitions),
               "--replicas", str(JETSTREAM_REPLICAS),
               "--listen", f"{HOST}:{self.ports['listen']}",
               "--metrics-listen", f"{HOST}:{self.ports['metrics']}",
               "--data", self.data, "--tokens", tokens, "--ready-file", self.ready]
        if partition_map:
            cmd += ["--partition-map", partition_map]
        if http:
            cmd += ["--http-listen", f"{HOST}:{self.ports.get('http', 0)}"]
        cmd += list(extra)  # e.g. --republish-tail
        with open(self.log, "a") as log:
            self._log_offset = log.tell()
            log.write(f"--- start {time.strftime('%Y-%m-%dT%H:%M:%S')}: {' '.join(cmd)}\n")
            log.flush()
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)
        write_file_atomic(self.pid_file, f"{self.proc.pid}\n")

    def poll_ready(self):
        """None while starting; 'ready'; or why it failed ('in-use', 'exited with N')."""
        lines = self.read_ready(self.proc.pid)
        if lines and "listen" in lines:
            self.addresses = lines
            self.ports = {k: int(self.addresses[k].rsplit(":", 1)[1])
                          for k in ("listen", "metrics", "http") if k in self.addresses}
            write_file_atomic(self.ports_json, json.dumps(self.ports) + "\n")
            return "ready"
        code = self.proc.poll()
        if code is None:
            return None
        with open(self.log, errors="replace") as f:
            f.seek(self._log_offset)
            text = f.read()
        if re.search(r"address already in use", text, re.IGNORECASE):
            return "in-use"
        return f"exited with {code}"

    def forget_ports(self):
        self.ports = {"listen": 0, "metrics": 0}

    def client(self):
        return self.addresses.get("listen") or f"{HOST}:{self.ports['listen']}"

    def metrics(self):
        return self.addresses.get("metrics") or f"{HOST}:{self.ports['metrics']}"

    def is_leader(self):
        """True/False from loanledger_cluster_is_leader; None if unreachable or not exported."""
        try:
            samples = scrape(self.metrics())
        except (OSError, ValueError):
            return None
        values = [v for k, v in samples.items() if k.split("{")[0] == IS_LEADER]
        return None if not values else any(v == 1 for v in values)


class LocalCluster:
    def __init__(self, root, partitions=None, replicas=None, tokens=None, bin_dir=None, partition_map=None,
                 http=None):
        self.root = os.path.abspath(root)
        os.makedirs(self.root, exist_ok=True)
        self.state_file = os.path.join(self.root, "cluster.json")
        state = {}
        if os.path.exists(self.state_file):
            with open(self.state_file) as f:
                state = json.load(f)
        if partitions is not None and state and partitions != state["partitions"]:
            raise ClusterError(f"{self.root} was created with --partitions {state['partitions']}: "
                               f"the partition count is fixed when a cluster is created")
        self.partitions = partitions or state.get("partitions", 1)
        self.replicas = replicas or state.get("replicas", 3)
        if self.partitions < 1 or self.replicas < 1:
            raise ClusterError("--partitions and --replicas must be at least 1")
        self.tokens = os.path.abspath(tokens) if tokens else state.get("tokens")
        self.partition_map = os.path.abspath(partition_map) if partition_map else state.get("partition_map")
        self.http = http if http is not None else state.get("http", False)
        bin_dir = bin_dir or os.environ.get("LOANLEDGER_BIN_DIR") or os.path.join(ROOT, "build")
        self.bin_dir = os.path.abspath(bin_dir)
        self.nats = NatsCluster(self.root, warn=warn)
        self.nodes = {(p, r): LoanledgerNode(self.root, p, r)
                      for p in range(self.partitions) for r in range(1, self.replicas + 1)}
        self.node_flags = ()  # further loanledgerd flags for every start (e.g. --lease-ms)

    def node(self, partition, replica):
        return self.nodes[(partition, replica)]

    # --- up
    def _make_tokens(self):
        cli = find_binary(self.bin_dir, "client", "loanledger")
        self.tokens = os.path.join(self.root, "tokens")
        lines = []
        for role in ("admin", "regulator"):
            out = subprocess.run([cli, "token", "new", "--role", role, "--name", f"cluster-{role}"],
                                 capture_output=True, text=True, check=True, timeout=30).stdout.splitlines()
            token_file = os.path.join(self.root, f"{role}.token")
            fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(out[0] + "\n")
            lines.append(out[1])
        fd = os.open(self.tokens + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(self.tokens + ".tmp", self.tokens)

    def up(self):
        """Starts whatever is not running; returns once every node serves (see the module doc)."""
        binary = find_binary(self.bin_dir, "server", "loanledgerd")
        if not self.tokens:
            self._make_tokens()
        if not os.path.isfile(self.tokens):
            raise ClusterError(f"tokens file {self.tokens} does not exist")
        write_file_atomic(self.state_file, json.dumps(
            {"partitions": self.partitions, "replicas": self.replicas, "tokens": self.tokens,
             "partition_map": self.partition_map, "http": self.http}, indent=1) + "\n")
        nats_was_running = {k for k, n in self.nats.nodes.items() if n.running()}
        started = []
        try:
            self.nats.start()
            todo = [n for n in self.nodes.values() if not n.running()]
            started = list(todo)
            self._start_nodes(binary, todo, time.monotonic() + WAIT_S, self.node_flags)
            self.wait_leaders(time.monotonic() + WAIT_S)
        except BaseException:
            stop_all([(n.name, n.pid(), n.proc) for n in started if n.running()], STOP_WAIT_S)
            for k, n in self.nats.nodes.items():
                if k not in nats_was_running:
                    n.stop(STOP_WAIT_S, warn)
            raise
        for n in self.nodes.values():
            if n not in started:
                n.load_addresses()
        return self.write_env()

    def nats_urls_for(self, node):
        """--nats for `node`: every server, its "own" first (replica R on server
        (R - 1) mod 3 + 1), as a deployment lists the node's machine's server
        first (loanledgerd tries them in order; docs/cluster.md, "Flags")."""
        ks = sorted(self.nats.nodes)
        first = (node.replica - 1) % len(ks)
        return self.nats.urls(ks[first:] + ks[:first])

    def _start_nodes(self, binary, todo, deadline, extra=()):
        for n in todo:
            n.spawn(binary, self.nats_urls_for(n), self.partitions, self.tokens, self.partition_map,
                    extra, http=self.http)
        attempts = {n.name: 1 for n in todo}
        pending = list(todo)
        while pending:
            for n in list(pending):
                state = n.poll_ready()
                if state is None:
                    continue
                if state == "ready":
                    pending.remove(n)
                elif state == "in-use" and attempts[n.name] < START_ATTEMPTS:
                    warn(f"{n.name}: a port it used before is taken; starting it on new ports")
                    attempts[n.name] += 1
                    n.forget_ports()
                    n.spawn(binary, self.nats_urls_for(n), self.partitions, self.tokens, self.partition_map,
                            extra, http=self.http)
                else:
                    raise ClusterError(f"{n.name} did not start ({state}); {n.log}:\n{log_tail(n.log)}")
            if time.monotonic() > deadline:
                n = pending[0]
                raise ClusterError(f"{n.name} not ready within {WAIT_S:.0f} s (no {n.ready}); "
                                   f"{n.log}:\n{log_tail(n.log)}")
            time.sleep(POLL_S)

    def leaders(self):
        """{partition: [replicas whose is_leader is 1]}, or None if no node exports the metric."""
        views = {key: n.is_leader() for key, n in self.nodes.items()}
        if all(v is None for v in views.values()):
            return None
        out = {p: [] for p in range(self.partitions)}
        for (p, r), v in views.items():
            if v:
                out[p].append(r)
        return out

    def wait_leaders(self, deadline):
        """Until each partition has exactly one leader (skipped if the metric is not exported)."""
        while True:
            leaders = self.leaders()
            if leaders is None or all(len(rs) == 1 for rs in leaders.values()):
                return leaders
            if time.monotonic() > deadline:
                tails = "".join(f"--- {n.log}\n{log_tail(n.log, 10)}" for n in self.nodes.values())
                raise ClusterError(f"no single leader per partition within {WAIT_S:.0f} s "
                                   f"(leaders by partition: {leaders})\n{tails}")
            time.sleep(0.2)

    def write_env(self):
        nodes = [self.nodes[k] for k in sorted(self.nodes)]
        env = {"LOANLEDGER_SERVER": ",".join(n.client() for n in nodes),
               "NATS_URLS": self.nats.urls(),
               "METRICS": ",".join(n.metrics() for n in nodes)}
        if self.http:
            env["HTTP"] = ",".join(n.addresses.get("http", "") for n in nodes)
        text = (f"# Written by scripts/cluster.sh up {self.root}; use: . {self.root}/cluster.env\n"
                + "".join(f"{k}={v}\n" for k, v in env.items()) + "export " + " ".join(env) + "\n")
        write_file_atomic(os.path.join(self.root, "cluster.env"), text)
        listing = [{"name": n.name, "partition": n.partition, "replica": n.replica, "pid": n.pid(),
                    "client": n.client(), "metrics": n.metrics(), "http": n.addresses.get("http"),
                    "log": n.log} for n in nodes]
        write_file_atomic(os.path.join(self.root, "nodes.json"), json.dumps(listing, indent=1) + "\n")
        return env

    # --- faults, for tests
    def kill9(self, partition, replica):
        n = self.node(partition, replica)
        pid = n.pid()
        os.kill(pid, signal.SIGKILL)
        wait_pid_exit(pid, 10.0, n.proc)

    def pause(self, partition, replica):
        os.kill(self.node(partition, replica).pid(), signal.SIGSTOP)

    def resume(self, partition, replica):
        os.kill(self.node(partition, replica).pid(), signal.SIGCONT)

    def stop_node(self, partition, replica):
        n = self.node(partition, replica)
        if n.running():
            stop_all([(n.name, n.pid(), n.proc)], STOP_WAIT_S)

    def start_node(self, partition, replica, extra=()):
        """Starts one loanledgerd (with `extra` flags) and waits for its ready file."""
        n = self.node(partition, replica)
        self._start_nodes(find_binary(self.bin_dir, "server", "loanledgerd"), [n],
                          time.monotonic() + WAIT_S, tuple(self.node_flags) + tuple(extra))

    # --- down
    def down(self):
        """Stops every process with a pid file in DIR: loanledgerd first, then NATS."""
        pid_dir = os.path.join(self.root, "pids")
        names = sorted(os.listdir(pid_dir)) if os.path.isdir(pid_dir) else []
        ll = []
        for name in names:
            m = re.fullmatch(r"ll-(\d+)-(\d+)\.pid", name)
            if m:
                n = self.nodes.get((int(m.group(1)), int(m.group(2)))) or \
                    LoanledgerNode(self.root, int(m.group(1)), int(m.group(2)))
                if n.running():
                    ll.append((n.name, n.pid(), n.proc))
        clean = stop_all(ll, STOP_WAIT_S)
        nats = [(n.name, n.pid(), n.proc) for n in self.nats.nodes.values() if n.running()]
        clean = stop_all(nats, STOP_WAIT_S) and clean
        for name in names:
            if re.fullmatch(r"(ll-\d+-\d+|nats-\d+)\.pid", name):
                os.unlink(os.path.join(pid_dir, name))
        return clean


def main(argv):
    parser = argparse.ArgumentParser(prog="scripts/cluster.sh",
                                     description="A local loanledger cluster on 127.0.0.1 (3 nats-server, "
                                                 "P x R loanledgerd).")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start (or restart on its data) the cluster in DIR")
    up.add_argument("dir", metavar="DIR")
    up.add_argument("--tokens", metavar="FILE", help="tokens file for every node (default: fresh, DIR/tokens)")
    up.add_argument("--partitions", type=int, metavar="P", help="partition count, fixed at creation (default 1)")
    up.add_argument("--replicas", type=int, metavar="R", help="loanledgerd per partition (default 3)")
    up.add_argument("--partition-map", metavar="FILE",
                    help="'INSTITUTION_ID PARTITION' lines placing institutions explicitly, fixed at creation "
                         "(docs/cluster.md)")
    up.add_argument("--http", action="store_true",
                    help="every node also serves the HTTP API and the regulator console on 127.0.0.1 "
                         "(a port chosen at run time; HTTP in cluster.env); kept for later ups of DIR")
    down = sub.add_parser("down", help="stop every process of the cluster in DIR")
    down.add_argument("dir", metavar="DIR")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            cluster = LocalCluster(args.dir, args.partitions, args.replicas, args.tokens,
                                   partition_map=args.partition_map, http=args.http or None)
            env = cluster.up()
            print(f"cluster up: {len(cluster.nodes)} loanledgerd ({cluster.partitions} partition(s) x "
                  f"{cluster.replicas}), 3 nats-server; . {cluster.root}/cluster.env")
            for k, v in env.items():
                print(f"  {k}={v}")
        else:
            if not os.path.isdir(args.dir):
                raise ClusterError(f"{args.dir} does not exist")
            clean = LocalCluster(args.dir).down()
            print("cluster down" + ("" if clean else " (some processes needed SIGKILL)"))
    except (ClusterError, subprocess.SubprocessError, OSError) as e:
        print(f"cluster.sh: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
