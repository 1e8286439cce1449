#!/usr/bin/env python3
"""What `loanledgerd --republish-tail`'s prefix check costs (docs/cluster.md, "Putting a lost stream
tail back"), by hand: a 1x3 cluster on 127.0.0.1 (tests/support/local_cluster.py) is fed EVENTS
synthetic events in batches of BATCH (one stream record per batch) by loanledger-load; the NATS
stores are saved; a few more records are submitted; the NATS stores are put back, so that every
loanledgerd store is ahead of the stream; node 1 then starts with --republish-tail, which compares
every record of the stream with its own before putting the tail back. Prints the check's own figures
(its log line: records, MiB, seconds, records/s) and the peak RSS (VmHWM) of the repairing process
beside that of node 2 started as usual on the same store.

    bench/republish_check.py [--build DIR] [--events N] [--batch N] [--keep]

Every process is started on ports chosen at run time and stopped by its PID; the work dir is removed
unless --keep.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for sub in ("tests/cluster", "tests/support"):
    sys.path.insert(0, os.path.join(ROOT, sub))
from cluster_republish_test import nats_stores, read, stream_state  # noqa: E402
from local_cluster import LocalCluster, new_token, scrape  # noqa: E402

CHECK = re.compile(r"records (\d+)\.\.(\d+) equal this store's \((\d+) records, ([\d.]+) MiB in ([\d.]+) s: "
                   r"(\d+) records/s\)")


def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def applied_everywhere(cluster, above, timeout_s=600):
    """Waits until every node has applied the stream's last record, past `above` (the gauges refresh
    every second); returns that sequence."""
    deadline = time.monotonic() + timeout_s
    while True:
        seqs = set()
        for n in cluster.nodes.values():
            m = {k.split("{")[0]: v for k, v in scrape(n.metrics()).items()}
            seqs.add((m.get("loanledger_cluster_applied_stream_seq"), m.get("loanledger_cluster_stream_last_seq")))
        if len(seqs) == 1:
            a, last = seqs.pop()
            if a is not None and a == last and a > above:
                return int(a)
        if time.monotonic() > deadline:
            raise RuntimeError(f"the nodes did not converge: {seqs}")
        time.sleep(0.5)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.environ.get("BUILD_DIR", os.path.join(ROOT, "build")))
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    cli = os.path.join(build, "client", "loanledger")
    load = os.path.join(build, "bench", "loanledger-load")
    work = tempfile.mkdtemp(prefix="ll-republish-check-")
    tokens, inst_a, inst_b = (os.path.join(work, n) for n in ("tokens", "inst-a", "inst-b"))
    server_lines, inst_tokens = [], []
    for i in range(4):
        token, line = new_token(cli, "--role", "institution", "--institution", f"LOAD{i}")
        inst_tokens.append(token)
        server_lines.append(line)
    for role in ("regulator", "admin"):
        server_lines.append(new_token(cli, "--role", role)[1])
    with open(tokens, "w") as f:
        f.write("\n".join(server_lines) + "\n")
    with open(inst_a, "w") as f:
        f.write("\n".join(inst_tokens[:2]) + "\n")
    with open(inst_b, "w") as f:
        f.write("\n".join(inst_tokens[2:]) + "\n")
    cluster = LocalCluster(os.path.join(work, "cluster"), tokens=tokens, bin_dir=build)
    ok = False
    try:
        cluster.up()

        def feed(inst_file, events, what, above=0):
            leader = next(n for n in cluster.nodes.values() if n.is_leader())
            t = time.monotonic()
            subprocess.run([load, "--server", leader.client(), "--tokens", inst_file, "--connections", "2",
                            "--batch", str(a.batch), "--events", str(events), "--in-flight", "16",
                            "--report-interval-ms", "0"], check=True, stdout=subprocess.DEVNULL)
            seq = applied_everywhere(cluster, above)
            print(f"{what}: {events} events in batches of {a.batch}: stream seq {seq}, "
                  f"{time.monotonic() - t:.1f} s", flush=True)
            return seq

        seq_a = feed(inst_a, a.events, "part A")
        cluster.down()
        nats_stores(cluster, "save", "a")
        cluster.up()
        stream_state(cluster, 90.0)
        seq_b = feed(inst_b, 20 * a.batch * 2, "part B", seq_a)
        cluster.down()
        nats_stores(cluster, "restore", "a")
        cluster.nats.start()
        n1 = cluster.node(0, 1)
        t = time.monotonic()
        cluster.start_node(0, 1, ["--republish-tail"])
        wall = time.monotonic() - t
        text = read(n1.log, n1._log_offset)
        m = CHECK.search(text)
        if not m or f"republished stream LOANLEDGER_P0 up to {seq_b}" not in text:
            raise RuntimeError(f"node 1 did not check and republish:\n{text[-3000:]}")
        hwm1 = vm_hwm_kib(n1.pid())
        cluster.start_node(0, 2)
        hwm2 = vm_hwm_kib(cluster.node(0, 2).pid())
        first, last, n, mib, secs, rate = m.groups()
        print(f"prefix check: records {first}..{last} ({n} records, {mib} MiB) in {secs} s: {rate} records/s, "
              f"{float(mib) / max(float(secs), 1e-3):.0f} MiB/s; republished {seq_a + 1}..{seq_b}; "
              f"start with --republish-tail {wall:.1f} s; peak RSS {hwm1 // 1024} MiB (node 2 started as "
              f"usual: {hwm2 // 1024} MiB)", flush=True)
        ok = True
    finally:
        cluster.down()
        if ok and not a.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"work dir kept: {work}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
