#!/usr/bin/env python3
"""Report latency of a partitioned cluster against a single node (issue 13: "within the
single-node goals plus one loopback round trip"). Not a test: nothing is asserted.

    bench/partition_latency.py [BUILD_DIR] [--scale S] [--seconds N] [--partitions P] [--replicas R]
                               [--national-only] [--under-load [--clients-idle]]

The generator's national portfolio (`gen --scale S --seed 3`, one file per bank) goes through
`loanledger submit` to a single loanledgerd and to a cluster of P partitions x R replicas
(default 1) on 3 nats-server (tests/support/local_cluster.py: replica R's nodes list
nats-server ((R - 1) mod 3) + 1 first); then `loanledger-load --reports-only --both-reports`
asks each, for N seconds, for the national report and the report by province (every category)
in turn every 2 ms (with --national-only, the national one only), and prints p50/p99. Beside
them, the yardstick "one loopback round trip": `nats-rtt` (bench/nats_rtt.cc) times a bare
request/reply through nats-server for N seconds, requester and responder on the same server and
on two routed servers. Every process binds 127.0.0.1 on ports chosen at run time and is stopped
by its PID. With --under-load, the reports are asked instead while the portfolio is being
submitted, to a fresh single node and a fresh cluster in each round, and the yardstick is
timed while the cluster's submission runs (requester and responder on one server); with
--clients-idle as well, the submitting CLIs run under SCHED_IDLE, so that on a machine of few
cores they stand in for the banks' own machines rather than compete with the servers.
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
sys.path.insert(0, os.path.join(ROOT, "tests", "cluster"))
import cluster_workload  # noqa: E402
from cluster_workload import Submitter, Workload  # noqa: E402
from ll_server import start_loanledgerd  # noqa: E402
from local_cluster import LocalCluster  # noqa: E402


def reports(build, server, token, seconds, both=True, during=None):
    """loanledger-load --reports-only for `seconds` (or while `during()` runs, when given);
    {'national': (p50, p99, n), 'province': ...} (national only when not `both`)."""
    p = subprocess.Popen([os.path.join(build, "bench", "loanledger-load"), "--server", server,
                          "--regulator-token", token, "--reports-only",
                          *(["--both-reports"] if both else []),
                          "--report-interval-ms", "2", "--report-date", "2024-09-30"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if during is None:
        time.sleep(seconds)
    else:
        try:
            during()
        except BaseException:
            p.kill()
            p.communicate(timeout=30)
            raise
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    got = {}
    for line in out.splitlines():
        m = re.match(r"report_latency_ms(\([^)]*\))? p50=([\d.]+) p99=([\d.]+) queries=(\d+)", line)
        if m:
            got["province" if "province" in (m.group(1) or "") else "national"] = (
                float(m.group(2)), float(m.group(3)), int(m.group(4)))
    if not got:
        raise RuntimeError(f"no latencies from loanledger-load: {out} {err}")
    return got


def round_trips(build, requester_url, responder_url, seconds):
    """nats-rtt for `seconds`: (p50, p99, requests) in ms."""
    out = subprocess.run([os.path.join(build, "bench", "nats-rtt"), "--requester", requester_url,
                          "--responder", responder_url, "--seconds", str(seconds),
                          "--interval-ms", "2"], capture_output=True, text=True,
                         timeout=seconds + 60)
    m = re.search(r"nats_rtt_ms p50=([\d.]+) p99=([\d.]+) max=[\d.]+ requests=(\d+)", out.stdout)
    if out.returncode != 0 or not m:
        raise RuntimeError(f"nats-rtt failed: {out.stdout} {out.stderr}")
    return float(m.group(1)), float(m.group(2)), int(m.group(3))


def round_trips_during(build, requester_url, responder_url, during):
    """nats-rtt while `during()` runs (stopped by SIGTERM after it): (p50, p99, requests) in ms."""
    p = subprocess.Popen([os.path.join(build, "bench", "nats-rtt"), "--requester", requester_url,
                          "--responder", responder_url, "--seconds", "3600", "--interval-ms", "2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        during()
    finally:
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
    m = re.search(r"nats_rtt_ms p50=([\d.]+) p99=([\d.]+) max=[\d.]+ requests=(\d+)", out)
    if p.returncode != 0 or not m:
        raise RuntimeError(f"nats-rtt failed: {out} {err}")
    return float(m.group(1)), float(m.group(2)), int(m.group(3))


def stop_all(single, cluster, work):
    """Stops the single node and the cluster (each when running) and removes `work`."""
    if single is not None:
        single.stop()
    if cluster is not None:
        cluster.down()
    shutil.rmtree(work, ignore_errors=True)


def idle_while(run):
    """Runs `run()` with this thread's scheduling policy SCHED_IDLE (inherited by the CLI
    processes it starts), then puts SCHED_OTHER back."""
    def go():
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        try:
            run()
        finally:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    return go


def under_load(build, args):
    """--under-load: per round, a fresh single node and a fresh cluster, each asked for reports
    for as long as the whole portfolio takes to submit to it (the CLI submits one bank's file at
    a time). With --clients-idle the submitting CLIs run under SCHED_IDLE."""
    work = tempfile.mkdtemp(prefix="ll-partition-latency-load-")
    rows, trips = [], []
    single = cluster = None
    try:
        w = Workload(build, work)
        w.prepare()
        for rnd in (1, 2):  # alternate, one sitting
            data = os.path.join(work, f"single-{rnd}", "data")
            os.makedirs(data)
            single = start_loanledgerd(build, data, w.tokens, os.path.join(work, f"single-{rnd}", "ll.log"))
            sub = Submitter(w, single.address(), batch_size=1000)
            start = time.monotonic()
            run = idle_while(sub.run) if args.clients_idle else sub.run
            got = reports(build, single.address(), w.regulator, 0, not args.national_only, run)
            rows.append(("single node", rnd, got, w.events / (time.monotonic() - start)))
            single.stop()
            single = None
            cluster = LocalCluster(os.path.join(work, f"cluster-{rnd}"), partitions=args.partitions,
                                   replicas=args.replicas, tokens=w.tokens, bin_dir=build)
            cluster.up()
            everyone = ",".join(n.client() for n in cluster.nodes.values())
            sub = Submitter(w, everyone, batch_size=1000)
            start = time.monotonic()
            run = idle_while(sub.run) if args.clients_idle else sub.run
            # The yardstick under the same load: a bare round trip through the nats-server
            # both partitions' nodes list first (requester and responder on it).
            nats1 = cluster.nats.nodes[sorted(cluster.nats.nodes)[0]].client_url()
            trip = []

            def run_and_time_trips(run=run, nats1=nats1, trip=trip):
                trip.append(round_trips_during(build, nats1, nats1, run))

            got = reports(build, cluster.node(0, 1).client(), w.regulator, 0, not args.national_only,
                          run_and_time_trips)
            trips.append((rnd, trip[0]))
            rows.append((f"{args.partitions} x {args.replicas} cluster (asked of ll-0-1)", rnd, got,
                         w.events / (time.monotonic() - start)))
            if sub.error:
                raise sub.error
            cluster.down()
            cluster = None
        print(f"{w.events} events, {len(w.files)} banks; reports every 2 ms while they are submitted")
        print("| setup | round | national p50 / p99 ms | by province p50 / p99 ms | queries | events/s |")
        print("| --- | --- | --- | --- | --- | --- |")
        for name, rnd, got, rate in rows:
            n, p = got.get("national", (0, 0, 0)), got.get("province", (0, 0, 0))
            print(f"| {name} | {rnd} | {n[0]:.2f} / {n[1]:.2f} | {p[0]:.2f} / {p[1]:.2f} | "
                  f"{n[2] + p[2]} | {rate:,.0f} |")
        print("\none loopback round trip through nats-server while the cluster's submission runs "
              "(nats-rtt, requester and responder on the servers' first, every 2 ms):")
        print("| round | p50 / p99 ms | requests |")
        print("| --- | --- | --- |")
        for rnd, (p50, p99, n) in trips:
            print(f"| {rnd} | {p50:.2f} / {p99:.2f} | {n} |")
    finally:
        stop_all(single, cluster, work)
    return 0


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build", nargs="?", default=os.path.join(ROOT, "build"))
    ap.add_argument("--scale", default="0.001")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--partitions", type=int, default=2)
    ap.add_argument("--replicas", type=int, default=1)
    ap.add_argument("--national-only", action="store_true",
                    help="ask only for the national report (default: national and by province in turn)")
    ap.add_argument("--under-load", action="store_true",
                    help="ask while the portfolio is being submitted (a fresh single node and a "
                         "fresh cluster each round) instead of on a quiet store")
    ap.add_argument("--clients-idle", action="store_true",
                    help="with --under-load: the submitting CLIs run under SCHED_IDLE, standing "
                         "in for the banks' own machines (they take only a core nothing else wants)")
    args = ap.parse_args(argv)
    build = os.path.abspath(args.build)
    cluster_workload.SCALE, cluster_workload.SEED = args.scale, "3"
    if args.under_load:
        return under_load(build, args)
    work = tempfile.mkdtemp(prefix="ll-partition-latency-")
    cluster = single = None
    try:
        w = Workload(build, work)
        w.prepare()
        data = os.path.join(work, "single", "data")
        os.makedirs(data)
        single = start_loanledgerd(build, data, w.tokens, os.path.join(work, "single", "ll.log"))
        Submitter(w, single.address(), batch_size=1000).run()
        cluster = LocalCluster(os.path.join(work, "cluster"), partitions=args.partitions,
                               replicas=args.replicas,
                               tokens=w.tokens, bin_dir=build)
        cluster.up()
        everyone = ",".join(n.client() for n in cluster.nodes.values())
        sub = Submitter(w, everyone, batch_size=1000)
        sub.run()
        if sub.error:
            raise sub.error
        rows, trips = [], []
        nats1, nats2 = (cluster.nats.nodes[k].client_url() for k in sorted(cluster.nats.nodes)[:2])
        for rnd in (1, 2):  # alternate, one sitting
            rows.append(("single node", rnd, reports(build, single.address(), w.regulator, args.seconds,
                                                           not args.national_only)))
            rows.append((f"{args.partitions} x {args.replicas} cluster (asked of ll-0-1)", rnd,
                         reports(build, cluster.node(0, 1).client(), w.regulator, args.seconds,
                                 not args.national_only)))
            trips.append(("same server", rnd, round_trips(build, nats1, nats1, args.seconds)))
            trips.append(("two routed servers", rnd, round_trips(build, nats1, nats2, args.seconds)))
        print(f"{w.events} events, {len(w.files)} banks; reports every 2 ms for {args.seconds:.0f} s each")
        print("| setup | round | national p50 / p99 ms | by province p50 / p99 ms | queries |")
        print("| --- | --- | --- | --- | --- |")
        for name, rnd, got in rows:
            n, p = got.get("national", (0, 0, 0)), got.get("province", (0, 0, 0))
            print(f"| {name} | {rnd} | {n[0]:.2f} / {n[1]:.2f} | {p[0]:.2f} / {p[1]:.2f} | {n[2] + p[2]} |")
        print("\none loopback round trip through nats-server (nats-rtt, 512-byte reply, every 2 ms):")
        print("| requester and responder on | round | p50 / p99 ms | requests |")
        print("| --- | --- | --- | --- |")
        for name, rnd, (p50, p99, n) in trips:
            print(f"| {name} | {rnd} | {p50:.2f} / {p99:.2f} | {n} |")
    finally:
        stop_all(single, cluster, work)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
