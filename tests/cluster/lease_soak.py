#!/usr/bin/env python3
"""By hand (not in CTest): does a leader keep its lease under full load? Counts lease step-downs
that no fault caused (docs/cluster.md, "Failover": a shorter lease fails over sooner, and a leader
whose renewal is late steps down for nothing).

    tests/cluster/lease_soak.py BUILD_DIR SECONDS [--lease-ms MS] [--connections C] [--batch N] [--keep]

Starts a local cluster (3 nats-server, 3 loanledgerd; tests/support/local_cluster.py) with
`--lease-ms MS` (default: loanledgerd's own), runs bench's `loanledger-load` against the leader for
SECONDS (C connections, default 4, N events per batch, default 1000, 8 in flight each; then
stopped by SIGTERM), then counts in every node's log the step-downs ("lease of partition 0 not
renewed in time", "... lost") and the elections, and prints each node's applied journal records.
Exits 1 if the cluster did not start or the load tool ended before SECONDS; the step-downs are
a figure, not a failure.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "support"))
from local_cluster import LocalCluster, new_token, scrape  # noqa: E402

STEP_DOWN = re.compile(r"lease of partition \d+ (not renewed in time|lost)")
ELECTED = re.compile(r"this node \(\S+\) leads partition")


def arg(argv, name, default):
    return argv[argv.index(name) + 1] if name in argv else default


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    build, seconds = os.path.abspath(argv[0]), float(argv[1])
    lease_ms = arg(argv, "--lease-ms", "")
    connections, batch = arg(argv, "--connections", "4"), arg(argv, "--batch", "1000")
    cli = os.path.join(build, "client", "loanledger")
    load = os.path.join(build, "bench", "loanledger-load")
    work = tempfile.mkdtemp(prefix="ll-lease-soak-")
    ok = False
    cluster = None
    try:
        server_tokens, inst_tokens = [], []
        for i in range(1, 9):
            token, line = new_token(cli, "--role", "institution", "--institution", f"SOAK{i}")
            inst_tokens.append(token)
            server_tokens.append(line)
        for role in ("admin", "regulator"):
            server_tokens.append(new_token(cli, "--role", role)[1])
        with open(os.path.join(work, "tokens"), "w") as f:
            f.write("\n".join(server_tokens) + "\n")
        with open(os.path.join(work, "institution-tokens"), "w") as f:
            f.write("\n".join(inst_tokens) + "\n")
        cluster = LocalCluster(os.path.join(work, "cluster"), tokens=os.path.join(work, "tokens"), bin_dir=build)
        if lease_ms:
            cluster.node_flags = ("--lease-ms", lease_ms)
        cluster.up()
        leader = cluster.node(0, cluster.leaders()[0][0])
        print(f"cluster up (lease {lease_ms or 'default'} ms); load on the leader {leader.name} for "
              f"{seconds:.0f} s", flush=True)
        t0 = time.monotonic()
        p = subprocess.Popen([load, "--server", leader.client(), "--tokens", os.path.join(work, "institution-tokens"),
                              "--connections", connections, "--batch", batch, "--events", "2000000000",
                              "--report-interval-ms", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
        while time.monotonic() - t0 < seconds and p.poll() is None:
            time.sleep(0.5)
        early = p.poll() is not None
        p.terminate()
        out = p.communicate(timeout=60)[0]
        elapsed = time.monotonic() - t0
        if early:
            print(f"loanledger-load ended after {elapsed:.0f} s:\n{out[-2000:]}", file=sys.stderr)
            return 1
        applied = {}
        for n in cluster.nodes.values():
            s = scrape(n.metrics())
            applied[n.name] = int(next(v for k, v in s.items() if k.startswith("loanledger_cluster_applied_stream_seq")))
        ok = True
    finally:
        step_downs, elections = {}, {}
        if cluster is not None:
            cluster.down()
            for n in cluster.nodes.values():
                with open(n.log, errors="replace") as f:
                    text = f.read()
                step_downs[n.name] = len(STEP_DOWN.findall(text))
                elections[n.name] = len(ELECTED.findall(text))
        if ok and "--keep" not in argv:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"work dir kept: {work}", file=sys.stderr)
    print(f"load for {elapsed:.0f} s; journal records applied per node: {applied}")
    print(f"elections per node: {elections}; lease step-downs per node: {step_downs} "
          f"(total {sum(step_downs.values())})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
