#!/usr/bin/env python3
"""scripts/cluster.sh (tests/support/local_cluster.py) against its contract
(deploy/README.md, "Cluster: three machines"), with a stand-in loanledgerd
(fake_loanledgerd.py) so that it runs before and independently of cluster
mode itself, and the real `loanledger token new`:

- `up DIR --partitions 2 --replicas 2`: 3 NATS servers and 4 nodes serve on
  127.0.0.1; cluster.env names every client, NATS and metrics address; pid
  files nats-1..3, ll-0-1 .. ll-1-2; fresh tokens (admin, regulator);
- a killed node and a killed NATS server: `up DIR` restarts just those, on
  the same ports; `down DIR` stops everything by PID; `up DIR` again starts the
  whole cluster on the same addresses; --partitions cannot change;
- a node that fails at start-up: `up` exits 1 naming it with its log tail and
  leaves nothing running.

usage: cluster_script_test.py BUILD_DIR [--real]   (BUILD_DIR/client/loanledger)
--real: BUILD_DIR/server/loanledgerd instead of the stand-in (cluster mode
itself); then `loanledger admin stats` must also answer through every address
of cluster.env, and the start-up failure case is left out.
"""
import hashlib
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
from nats_client import NatsClient  # noqa: E402
from nats_cluster import pid_alive, read_pid_file  # noqa: E402

SCRIPT = os.path.join(ROOT, "scripts", "cluster.sh")
NODES = ["ll-0-1", "ll-0-2", "ll-1-1", "ll-1-2"]
NATS = ["nats-1", "nats-2", "nats-3"]


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok:", what, flush=True)


def run(env, *args, expect=0):
    r = subprocess.run([SCRIPT, *args], capture_output=True, text=True, env=env, timeout=300)
    if r.returncode != expect:
        raise AssertionError(f"cluster.sh {' '.join(args)}: exit {r.returncode}, expected {expect}\n"
                             f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}")
    return r


def read_env(d):
    env = {}
    with open(os.path.join(d, "cluster.env")) as f:
        for line in f:
            if "=" in line and not line.startswith(("#", "export")):
                k, v = line.strip().split("=", 1)
                env[k] = v
    return env


def pids(d):
    return {name: read_pid_file(os.path.join(d, "pids", name + ".pid")) for name in NODES + NATS}


def check_serving(d):
    env = read_env(d)
    clients, metrics = env["LOANLEDGER_SERVER"].split(","), env["METRICS"].split(",")
    check(len(clients) == 4 and len(metrics) == 4 and len(env["NATS_URLS"].split(",")) == 3,
          f"cluster.env: 4 client, 4 metrics, 3 NATS addresses: {env}")
    for address in clients:
        host, port = address.rsplit(":", 1)
        check(host == "127.0.0.1", f"client {address} on 127.0.0.1")
        socket.create_connection((host, int(port)), timeout=5).close()
    for address in metrics:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as r:
            assert b"loanledger_cluster_is_leader" in r.read() or REAL
    if REAL:
        token = open(os.path.join(d, "admin.token")).read().strip()
        for address in clients:
            r = subprocess.run([os.path.join(BUILD, "client", "loanledger"), "admin", "stats",
                                "--server", address, "--token", token], capture_output=True, text=True,
                               timeout=60)
            check(r.returncode == 0, f"loanledger admin stats --server {address}: exit {r.returncode} {r.stderr}")
    for url in env["NATS_URLS"].split(","):
        with NatsClient([url]) as nc:
            assert nc.info["cluster"] == "loanledger" and nc.info["jetstream"], nc.info
    check(True, "every client address accepts, every /metrics and NATS server answers")
    ps = pids(d)
    check(all(p and pid_alive(p) for p in ps.values()), f"a live process per pid file: {ps}")
    return env, ps


def addresses(env):
    """Every process's addresses by name, from cluster.env (clients and metrics in NODES order)."""
    out = {name: [] for name in NODES + NATS}
    for key, names in (("LOANLEDGER_SERVER", NODES), ("METRICS", NODES), ("NATS_URLS", NATS)):
        for name, address in zip(names, env[key].split(",")):
            out[name].append(address)
    return out


def check_same_addresses(before, after, up, what):
    """`up` keeps every process's addresses but those it says it replaced: a port another process
    took meanwhile (under ctest -j2, a neighbour test's connection) is given up with a warning."""
    replaced = set(re.findall(r"warning: ((?:ll|nats)-[0-9-]+): .*(?:is taken|another port)", up.stderr))
    a, b = addresses(before), addresses(after)
    changed = {name for name in a if a[name] != b[name]}
    check(changed <= replaced, f"{what}: same addresses but for those replaced with a warning "
                               f"({sorted(replaced)}); changed: {sorted(changed)}")
    if replaced:
        print(f"note: {what}: cluster.sh replaced taken ports of {sorted(replaced)}")


BUILD = None
REAL = False


def main():
    global BUILD, REAL
    build = BUILD = os.path.abspath(sys.argv[1])
    REAL = "--real" in sys.argv[2:]
    work = tempfile.mkdtemp(prefix="ll-cluster-sh-")
    d = os.path.join(work, "c")
    bin_dir = os.path.join(work, "bin")
    os.makedirs(os.path.join(bin_dir, "server"))
    os.makedirs(os.path.join(bin_dir, "client"))
    server = os.path.join(build, "server", "loanledgerd") if REAL else os.path.join(HERE, "fake_loanledgerd.py")
    os.symlink(server, os.path.join(bin_dir, "server", "loanledgerd"))
    os.symlink(os.path.join(build, "client", "loanledger"), os.path.join(bin_dir, "client", "loanledger"))
    env = dict(os.environ, LOANLEDGER_BIN_DIR=bin_dir, LOANLEDGER_CLUSTER_WAIT_S="60")
    ok = False
    try:
        out = run(env, "up", d, "--partitions", "2", "--replicas", "2").stdout
        check("cluster up" in out, "up DIR --partitions 2 --replicas 2 exits 0")
        first, ps = check_serving(d)

        lines = open(os.path.join(d, "tokens")).read().split("\n")[:2]
        for role, line in zip(("admin", "regulator"), lines):
            path = os.path.join(d, f"{role}.token")
            token = open(path).read().strip()
            check(stat.S_IMODE(os.stat(path).st_mode) == 0o600 and token.startswith("llt_"),
                  f"{role}.token: a token, mode 600")
            digest, got_role = line.split()[:2]
            check(digest == hashlib.sha256(token.encode()).hexdigest() and got_role == role,
                  f"DIR/tokens has its {role} line")

        os.kill(ps["ll-1-2"], 9)
        os.kill(ps["nats-2"], 9)
        up = run(env, "up", d)
        second, ps2 = check_serving(d)
        check_same_addresses(first, second, up, "up after kill -9 of a node and a NATS server")
        check({k for k in ps if ps[k] != ps2[k]} == {"ll-1-2", "nats-2"}, "only the killed two restarted")

        run(env, "down", d)
        check(not any(pid_alive(p) for p in ps2.values()), "down: every process stopped")
        check(os.listdir(os.path.join(d, "pids")) == [], "down: pid files removed")
        up = run(env, "up", d)
        third, _ = check_serving(d)
        check_same_addresses(first, third, up, "up after down: the whole cluster again")
        err = run(env, "up", d, "--partitions", "3", expect=1).stderr
        check("fixed" in err, f"--partitions cannot change: {err.strip()}")
        run(env, "down", d)
        if not REAL:  # the stand-in fails on request; the real server has no such switch
            failing = dict(env, FAKE_LLD_FAIL="ll-0-2")
            err = run(failing, "up", d, expect=1).stderr
            check("ll-0-2 did not start" in err and "failing at start-up as asked" in err,
                  "a node that fails: up exits 1 naming it, with its log tail")
            left = [p for p in pids(d).values() if p and pid_alive(p)]
            check(not left, f"...and leaves nothing running: {left}")
            run(env, "down", d)
        ok = True
    finally:
        if os.path.isdir(d):
            subprocess.run([SCRIPT, "down", d], env=env, capture_output=True, timeout=300)
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work} for inspection", flush=True)
    print("PASS")


if __name__ == "__main__":
    main()
