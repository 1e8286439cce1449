#!/usr/bin/env python3
"""Long mode by hand (not in CTest): N kill -9 of the partition's leader while banks submit,
with 0 acknowledged batches lost (tests/RELIABILITY.md, "Cluster: leader kill loop").

    tests/cluster/leader_kill_loop.py BUILD_DIR N [--per-epoch K] [--lease-ms MS] [--keep]

An epoch is a fresh local cluster (3 nats-server, 3 loanledgerd; tests/support/local_cluster.py)
fed the 151 institution files of `gen --scale 0.00002 --seed 5` with `loanledger submit
--server A,B,C --batch-size 1` (a file whose CLI exits non-zero is rerun). While it runs, the
loop kills the leader (kill -9), measures the failover (leader death -> first batch acknowledged
by the new leader), restarts the killed node, waits until it is ready, and kills the new leader,
at most K times per epoch (default 15). At the end of an epoch: every file's last CLI run
accounts for all its events, no file's runs applied more than its events, the three nodes reach
the same stream seq with the same state digest, and every node's reports (national, by province,
by institution) equal a single plain loanledgerd's fed the same files, to the fen. Epochs run
until N kills are done. Exits 1 at the first failure (work dir kept; --keep keeps it and every
epoch's logs anyway). --lease-ms starts every loanledgerd with that lease TTL (default its own).
Each kill's failover is taken from the new leader's log and broken down (failover_breakdown);
at the end the lease step-downs of every node's log ("not renewed in time", "lost") are counted:
with the leaders killed, none should occur.
"""
import os
import re
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "support"))
from cluster_workload import (Failure, Submitter, Workload, check, compare_reports, converge,  # noqa: E402
                              failover_breakdown, leader_of, log, measure_failover, wait_until)
from local_cluster import LocalCluster  # noqa: E402

FAILOVER_BOUND_S = 20.0
# failover_breakdown's moments, in order: the dead leader's key expires, the new leader takes
# the lease, the client's session on it starts, it has caught up and serves, its first ack.
PHASES = ("expiry", "taken", "client_in", "serving", "first_ack")
STEP_DOWN = re.compile(r"lease of partition \d+ (not renewed in time|lost)")


def epoch(w, reference, root, budget, failovers, totals):
    cluster = LocalCluster(root, tokens=w.tokens, bin_dir=w.build)
    if totals["lease_ms"]:
        cluster.node_flags = ("--lease-ms", str(totals["lease_ms"]))
    try:
        cluster.up()
        addrs = ",".join(cluster.node(0, r).client() for r in range(1, cluster.replicas + 1))
        sub = Submitter(w, addrs, batch_size=1)
        sub.start()
        kills = 0
        wait_until(lambda: sub.done_files >= 3 or not sub.is_alive(), 60, "submission start")
        while kills < budget and sub.is_alive():
            leader = leader_of(cluster)
            t0 = time.monotonic()
            kill_wall = time.time()
            cluster.kill9(0, leader.replica)
            kills += 1
            survivors = [n for n in cluster.nodes.values() if n is not leader]
            try:
                seconds, new = measure_failover(survivors, t0, FAILOVER_BOUND_S)
            except Failure:
                if not sub.is_alive():
                    cluster.start_node(0, leader.replica)
                    break  # the submission ended right at the kill: nothing left to acknowledge
                raise
            detected = time.monotonic() - t0
            failovers.append(seconds)
            b = failover_breakdown(new, kill_wall, (totals["lease_ms"] or 3000) / 1000) or {}
            totals["breakdowns"].append(b)
            log(f"kill {totals['kills'] + kills}: {leader.name} -> {new.name} in {seconds:.2f} s "
                f"({sub.done_files}/{len(w.files)} files done; gauges showed it at {detected:.2f} s); after the kill: "
                + ", ".join(f"{k} {b[k]:.2f}" for k in PHASES if k in b))
            cluster.start_node(0, leader.replica)
        sub.finish(timeout_s=900)
        check(sub.applied <= w.events, f"runs applied {sub.applied} > {w.events} events")
        totals["kills"] += kills
        totals["runs"] += len(sub.runs)
        totals["nonzero"] += sum(1 for r in sub.runs if r[1] != 0)
        totals["duplicates"] += sum(r[3] for r in sub.runs)
        nodes = list(cluster.nodes.values())
        st = converge(w, nodes, timeout_s=120)
        totals["batches"] += next(iter(st.values()))["digest_seq"]
        for n in nodes:
            compare_reports(w.reports(n.client()), reference, n.name)
        log(f"epoch done: {kills} kills; reports of all nodes equal the single node's")
    finally:
        cluster.down()
        for n in cluster.nodes.values():
            with open(n.log, errors="replace") as f:
                totals["step_downs"] += sum(1 for line in f if STEP_DOWN.search(line))


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    build, n = argv[0], int(argv[1])
    per_epoch = int(argv[argv.index("--per-epoch") + 1]) if "--per-epoch" in argv else 15
    lease_ms = int(argv[argv.index("--lease-ms") + 1]) if "--lease-ms" in argv else 0
    keep = "--keep" in argv
    work = tempfile.mkdtemp(prefix="ll-leader-kill-loop-")
    failovers = []
    totals = {"kills": 0, "runs": 0, "nonzero": 0, "duplicates": 0, "batches": 0, "breakdowns": [],
              "lease_ms": lease_ms, "step_downs": 0}
    ok = False
    start = time.monotonic()
    try:
        w = Workload(build, work)
        w.prepare()
        reference = w.reference()
        e = 0
        while totals["kills"] < n:
            e += 1
            root = os.path.join(work, f"epoch-{e}")
            epoch(w, reference, root, min(per_epoch, n - totals["kills"]), failovers, totals)
            if not keep:
                shutil.rmtree(root, ignore_errors=True)
        ok = True
    except Failure as ex:
        print(f"FAIL after {totals['kills']} completed kills: {ex}", file=sys.stderr)
    finally:
        if ok and not keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"work dir kept: {work}", file=sys.stderr)
    if failovers:
        q = statistics.quantiles(failovers, n=100, method="inclusive") if len(failovers) > 1 else failovers * 99
        print(f"failover s: n={len(failovers)} min={min(failovers):.2f} median={statistics.median(failovers):.2f} "
              f"p95={q[94]:.2f} max={max(failovers):.2f}")
        # Each step of the breakdown: from the previous moment (the kill for the first).
        steps = {}
        for b in totals["breakdowns"]:
            prev = 0.0
            for k in PHASES:
                if k in b:
                    steps.setdefault(k, []).append(b[k] - prev)
                    prev = max(prev, b[k])
        print("failover steps s (median / max, from the previous moment): " + ", ".join(
            f"{k} {statistics.median(v):.2f} / {max(v):.2f} (n={len(v)})" for k, v in steps.items()))
    print(f"lease step-downs in the nodes' logs (not renewed in time, lost): {totals['step_downs']}")
    print(f"{'PASS' if ok else 'FAIL'}: {totals['kills']} leader kills in {time.monotonic() - start:.0f} s, "
          f"{totals['batches']} batches in the journals, {totals['runs']} CLI runs ({totals['nonzero']} "
          f"non-zero, rerun), {totals['duplicates']} events durable but unacknowledged (resent: duplicates), "
          f"0 acknowledged batches lost" if ok else "")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
