#!/usr/bin/env python3
"""Checks docs/capacity.md's model against a partitioned cluster on this machine (issue 13,
item 6). Not a test: it measures, prints, and compares with the model; it fails only when the
cluster's figures differ from the single node's or a submission fails.

    bench/capacity_check.py [--build DIR] [--scale S] [--seed N] [--banks N] [--before D]
        [--partitions P] [--replicas R] [--parallel N] [--date D] [--reference cli|load|none]
        [--cache DIR] [--work DIR] [--keep] [--autogroup-nice N] [--min-free-gib G]

1. Input: the generator's national portfolio, one file per bank (`loanledger gen --scale S
   --seed N [--banks N] [--before D] --out-dir`), made once and cached exactly as
   bench/workload.sh caches it (CACHE/history-S-N-BANKS[-before-D], BANKS `model` for the
   model's 160), so `--scale 0.21 --banks 200 --before 2024-12-02` reuses workload c's history.
2. Reference: one plain loanledgerd fed the same files (`--reference cli`: one `loanledger
   submit` per file, PARALLEL at a time, as the cluster gets them; `load`: loanledger-load
   --files, faster; `none`: skip, then only the per-node figures are measured). Its events/s,
   loans, RSS, store size and reports (national, by province, by institution, at DATE) are kept;
   its store is deleted before the cluster starts (disk).
3. Cluster: `scripts/cluster.sh up` (tests/support/local_cluster.py: 3 nats-server, P x R
   loanledgerd, ports chosen at run time, stopped by PID). Every file through `loanledger submit
   --server <every node>`, PARALLEL at a time, largest first; the CLI follows the NOT_LEADER
   redirect to its institution's partition leader (docs/cluster.md, "Partitions").
4. Per node, once every node has applied its stream to the end: loans held (admin stats),
   VmRSS and VmHWM, bytes per loan, the store's disk size; per partition: events (lines of
   its institutions' files, FNV-1a-64 mod P), the journal stream's bytes and messages
   (loanledger_cluster_stream_bytes / _messages, and JetStream's /jsz) -> journal bytes per
   event, against its files' CSV bytes; the NATS servers' store on disk.
5. The cluster's reports against the reference's, to the fen (JSON equal but for
   stream_positions).
6. Restart of one replica of the largest partition (a follower when R > 1): SIGKILL, start,
   seconds to its ready file (serving), to having applied the stream's end (caught up) and,
   with R = 1, to leading again (the start replays the journal tail since the newest loan
   snapshot); then the same after SIGTERM (a clean stop). The reports are checked again.
7. The model's predictions (docs/capacity.md) beside each measured figure.

--autogroup-nice N puts every process it starts in a new session (the cluster's nodes, the
reference node) into autogroup nice N (bench/README.md: `nice` alone ranks a process only in
its own session), for runs beside other work. Disk: the CSV (about 90 bytes per event), the
reference store (about 80), and the stream 3 times (62 per copy, one per NATS server) plus the
nodes' stores (about 80 x R); the disk is shared, so the submissions stop (and the run fails,
removing its files) when less than --min-free-gib (default 4) is left. Figures of a run:
bench/RESULTS.md, "Partitioned cluster at the largest size that fits here". BUILD_DIR needs a Release build of loanledger, loanledgerd, loanledger-load.
"""
import argparse
import concurrent.futures
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
from ll_server import start_loanledgerd  # noqa: E402
from local_cluster import LocalCluster, fnv1a64, scrape  # noqa: E402

# docs/capacity.md's model, the figures it predicts from.
# (Before this script's first run it said 110 B per loan, 0.3 s per million loans and "about
# the size of the CSV": bench/RESULTS.md, "Partitioned cluster at the largest size that fits".)
MODEL_BYTES_PER_LOAN_PEAK = 400          # national portfolio, right after a bulk load
MODEL_BYTES_PER_LOAN_REST = (150, 230)   # after a restart, large nodes
MODEL_RESTART_S_PER_MILLION_LOANS = (0.7, 3.2)  # quiet 10M store .. this busy 2-core VM
MODEL_JOURNAL_BYTES_PER_EVENT = 62       # per stream copy
MODEL_REPLICATED_SHARE = (0.30, 0.45)  # a replicated partition's events/s against a single node's
REPORTS = {"national": [], "province": ["--by", "province"], "institution": ["--by", "institution"]}
SUMMARY = re.compile(r"applied=(\d+) duplicates=(\d+) batches=(\d+) rejected=(\d+)")
SUBMIT_RERUNS = 3
CLI_TIMEOUT_S = 4 * 3600
CATCH_UP_TIMEOUT_S = 1800
RESTART_TIMEOUT_S = 900


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def out(msg=""):
    print(msg, flush=True)


def proc_status(pid):
    """{VmRSS, VmHWM} in bytes of a running process."""
    got = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                got[k] = int(v.split()[0]) * 1024
    return got


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def du(path):
    total = 0
    for d, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(d, f)).st_blocks * 512
            except FileNotFoundError:
                pass  # a RocksDB file removed while we walk
    return total


def set_autogroup_nice(pid, nice):
    if nice is None:
        return
    try:
        with open(f"/proc/{pid}/autogroup", "w") as f:
            f.write(str(nice))
    except OSError as e:
        log(f"autogroup nice of {pid}: {e}")


def mib(n):
    return f"{n / 2**20:,.0f} MiB"


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


class Files:
    """The cached per-bank files, their tokens, and their event and byte counts."""

    def __init__(self, args, cli, work):
        self.cli, self.work = cli, work
        banks_name = "model" if args.banks == 0 else str(args.banks)
        name = f"history-{args.scale}-{args.seed}-{banks_name}" + (f"-before-{args.before}" if args.before else "")
        self.dir = os.path.join(args.cache, name)
        if not os.path.exists(os.path.join(self.dir, ".done")):
            shutil.rmtree(self.dir, ignore_errors=True)
            gen = [cli, "gen", "--scale", args.scale, "--seed", str(args.seed), "--out-dir", self.dir]
            gen += ["--banks", str(args.banks)] if args.banks else []
            gen += ["--before", args.before] if args.before else []
            log(f"generating {name}: {' '.join(gen[1:])}")
            t = time.monotonic()
            subprocess.run(gen, check=True, stdout=subprocess.DEVNULL)
            open(os.path.join(self.dir, ".done"), "w").close()
            log(f"generated in {time.monotonic() - t:.0f} s")
        self.names = sorted(f[:-4] for f in os.listdir(self.dir) if f.endswith(".csv"))
        self.events, self.bytes = {}, {}
        for inst in self.names:
            path = self.path(inst)
            self.bytes[inst] = os.path.getsize(path)
            n = 0
            with open(path, "rb") as f:
                while True:
                    chunk = f.read(1 << 24)
                    if not chunk:
                        break
                    n += chunk.count(b"\n")
            self.events[inst] = n - 1  # the header
        self.total_events = sum(self.events.values())
        self._tokens()

    def path(self, inst):
        return os.path.join(self.dir, f"{inst}.csv")

    def _token(self, *args):
        lines = subprocess.run([self.cli, "token", "new", *args], check=True, capture_output=True,
                               text=True).stdout.splitlines()
        return lines[0], lines[1]

    def _tokens(self):
        self.token, lines = {}, []
        for inst in self.names:
            self.token[inst], line = self._token("--role", "institution", "--institution", inst)
            lines.append(line)
        self.admin, line = self._token("--role", "admin")
        lines.append(line)
        self.regulator, line = self._token("--role", "regulator")
        lines.append(line)
        self.tokens_file = os.path.join(self.work, "tokens")
        with open(os.open(self.tokens_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write("\n".join(lines) + "\n")
        self.institution_tokens = os.path.join(self.work, "institution-tokens")
        with open(os.open(self.institution_tokens, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write("".join(f"{i} {self.token[i]}\n" for i in self.names))

    def largest_first(self):
        return sorted(self.names, key=lambda i: -self.events[i])


class Runner:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build)
        self.cli = os.path.join(self.build, "client", "loanledger")
        self.load = os.path.join(self.build, "bench", "loanledger-load")
        for b in (self.cli, self.load, os.path.join(self.build, "server", "loanledgerd")):
            if not os.access(b, os.X_OK):
                raise SystemExit(f"capacity_check: {b} is missing (BUILD_DIR=... scripts/build.sh)")
        self.work = os.path.abspath(args.work) if args.work else tempfile.mkdtemp(prefix="ll-capacity-")
        os.makedirs(self.work, exist_ok=True)
        self.cluster = None
        self.single = None
        self.abort = None
        self.running = set()
        self.min_free = float("inf")
        self.figures = {}
        self.max_load = 0.0

    # --- helpers
    def run_cli(self, argv, timeout_s=120):
        p = subprocess.run([self.cli, *argv], capture_output=True, text=True, timeout=timeout_s)
        if p.returncode != 0:
            raise RuntimeError(f"loanledger {' '.join(argv[:3])} ... exited {p.returncode}: {p.stderr.strip()[-500:]}")
        return p.stdout

    def stats(self, server):
        got = {}
        for line in self.run_cli(["admin", "stats", "--server", server, "--token", self.f.admin]).splitlines():
            k, _, v = line.partition(" ")
            got[k] = v
        return got

    def reports(self, server):
        got = {}
        for name, extra in REPORTS.items():
            j = json.loads(self.run_cli(["report", "--date", self.args.date, "--format", "json", *extra,
                                         "--server", server, "--token", self.f.regulator], timeout_s=600))
            j.pop("stream_positions", None)
            got[name] = j
        return got

    def submit_all(self, servers, pids):
        """Every file through `loanledger submit`, PARALLEL at a time, largest first; a file whose
        CLI fails is rerun (what was applied comes back as duplicates). Returns (seconds,
        applied, duplicates, reruns)."""
        stop = threading.Event()

        def sample():
            while not stop.wait(1.0):
                self.max_load = max(self.max_load, float(loadavg().split()[0]))
                st = os.statvfs(self.work)
                free = st.f_bavail * st.f_frsize
                self.min_free = min(self.min_free, free)
                if free < self.args.min_free_gib * 2**30 and not self.abort:
                    # The disk is shared: stop before it fills (the cleanup frees this run's files).
                    self.abort = f"only {free / 2**30:.1f} GiB free on {self.work}: submissions stopped"
                    log(self.abort)
                    for q in list(self.running):
                        q.kill()
                for name, pid in pids.items():
                    try:
                        rss = proc_status(pid)["VmRSS"]
                        self.peak_rss[name] = max(self.peak_rss.get(name, 0), rss)
                    except (OSError, KeyError):
                        pass

        def one(inst):
            applied = dups = reruns = 0
            start = time.monotonic()
            for attempt in range(SUBMIT_RERUNS + 1):
                if self.abort:
                    raise RuntimeError(self.abort)
                p = subprocess.Popen([self.cli, "submit", self.f.path(inst), "--server", servers,
                                      "--token", self.f.token[inst]], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
                self.running.add(p)
                try:
                    stdout, stderr = p.communicate(timeout=CLI_TIMEOUT_S)
                finally:
                    self.running.discard(p)
                p.stdout, p.stderr = stdout, stderr
                m = SUMMARY.findall(p.stdout)
                if m:
                    applied += int(m[-1][0])
                    dups += int(m[-1][1])
                if p.returncode == 0:
                    self.file_seconds[inst] = time.monotonic() - start
                    return applied, dups, reruns
                reruns += 1
                log(f"submit {inst} attempt {attempt + 1}: exit {p.returncode}: {p.stderr.strip()[-300:]}")
                time.sleep(1.0)
            raise RuntimeError(f"submit of {inst} failed {SUBMIT_RERUNS + 1} times")

        self.peak_rss, self.file_seconds = {}, {}
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t = time.monotonic()
        totals = [0, 0, 0]
        done = 0
        try:
            with concurrent.futures.ThreadPoolExecutor(self.args.parallel) as pool:
                futures = [pool.submit(one, inst) for inst in self.f.largest_first()]
                for fut in concurrent.futures.as_completed(futures):
                    for k, v in enumerate(fut.result()):
                        totals[k] += v
                    done += 1
                    if done % 50 == 0:
                        log(f"  {done} of {len(futures)} files, {time.monotonic() - t:.0f} s, load {loadavg()}")
        finally:
            stop.set()
            sampler.join()
        if self.abort:
            raise RuntimeError(self.abort)
        for inst in self.f.largest_first()[:3]:
            s = self.file_seconds.get(inst, 0)
            out(f"  {inst}: {self.f.events[inst]:,} events ({self.f.events[inst] / self.f.total_events:.0%}) "
                f"in {s:.1f} s = {self.f.events[inst] / max(s, 1e-3):,.0f} events/s through one CLI process")
        return (time.monotonic() - t, *totals)

    def via_load(self, server):
        t = time.monotonic()
        p = subprocess.run([self.load, "--server", server, "--tokens", self.f.institution_tokens,
                            "--files", self.f.dir, "--connections", str(self.args.parallel)],
                           capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
        if p.returncode != 0:
            raise RuntimeError(f"loanledger-load exited {p.returncode}: {p.stderr.strip()[-500:]}")
        return time.monotonic() - t

    # --- 2. the reference
    def reference(self):
        mode = self.args.reference
        if mode == "none":
            return None
        d = os.path.join(self.work, "single")
        os.makedirs(d, exist_ok=True)
        srv = self.single = start_loanledgerd(self.build, os.path.join(d, "data"), self.f.tokens_file,
                                              os.path.join(d, "loanledgerd.log"))
        set_autogroup_nice(srv.pid, self.args.autogroup_nice)
        cpu0 = cpu_seconds(srv.pid)
        log(f"reference: a single node, every file via {mode}")
        if mode == "cli":
            seconds, applied, dups, reruns = self.submit_all(srv.address(), {"single": srv.pid})
            if applied != self.f.total_events:
                raise RuntimeError(f"single node: applied {applied} of {self.f.total_events} events")
        else:
            seconds = self.via_load(srv.address())
        st = self.stats(srv.address())
        mem = proc_status(srv.pid)
        ref = {"seconds": seconds, "events_per_s": self.f.total_events / seconds,
               "cpu_s": cpu_seconds(srv.pid) - cpu0, "loans": int(st["loans"]),
               "rss": mem["VmRSS"], "hwm": mem["VmHWM"], "store": du(os.path.join(d, "data"))}
        ref["reports"] = self.reports(srv.address())
        t = time.monotonic()
        srv.stop()
        ref["stop_s"] = time.monotonic() - t
        self.single = None
        out(f"single node ({mode}): {self.f.total_events:,} events in {seconds:.1f} s = "
            f"{ref['events_per_s']:,.0f} events/s (server CPU {ref['cpu_s']:.0f} s); loans {ref['loans']:,}; "
            f"VmRSS {mib(ref['rss'])} VmHWM {mib(ref['hwm'])} = {ref['rss'] / ref['loans']:.0f} / "
            f"{ref['hwm'] / ref['loans']:.0f} B/loan; store {mib(ref['store'])}; stop {ref['stop_s']:.1f} s")
        if not self.args.keep:
            shutil.rmtree(os.path.join(d, "data"), ignore_errors=True)
        return ref

    # --- 3, 4. the cluster
    def node_pids(self):
        return {n.name: n.pid() for n in self.cluster.nodes.values() if n.running()}

    def nice_cluster(self):
        for n in self.cluster.nodes.values():
            if n.running():
                set_autogroup_nice(n.pid(), self.args.autogroup_nice)
        for n in self.cluster.nats.nodes.values():
            if n.running():
                set_autogroup_nice(n.pid(), self.args.autogroup_nice)

    def applied_seq(self, node):
        try:
            return int(self.stats(node.client()).get("cluster_applied_stream_seq", "-1"))
        except (RuntimeError, subprocess.TimeoutExpired, ValueError):
            return -1

    def stream_ends(self):
        """{partition: the stream's last sequence}, the highest any of its nodes knows of."""
        ends = {}
        for n in self.cluster.nodes.values():
            st = self.stats(n.client())
            ends[n.partition] = max(ends.get(n.partition, 0), int(st["cluster_stream_last_seq"]))
        return ends

    def wait_caught_up(self, nodes, ends, timeout_s=CATCH_UP_TIMEOUT_S):
        deadline = time.monotonic() + timeout_s
        pending = list(nodes)
        while pending:
            pending = [n for n in pending if self.applied_seq(n) < ends[n.partition]]
            if pending and time.monotonic() > deadline:
                raise RuntimeError(f"not caught up within {timeout_s} s: {[n.name for n in pending]}")
            if pending:
                time.sleep(0.1)

    def jsz(self):
        """{stream name: (messages, bytes)} from a NATS server's /jsz (one replica's copy)."""
        for n in self.cluster.nats.nodes.values():
            try:
                with urllib.request.urlopen(f"{n.monitoring_url()}/jsz?accounts=true&streams=true",
                                            timeout=5) as r:
                    j = json.load(r)
            except (OSError, ValueError):
                continue
            got = {}
            for acc in j.get("account_details") or []:
                for s in acc.get("stream_detail") or []:
                    got[s["name"]] = (s["state"]["messages"], s["state"]["bytes"])
            if got:
                return got
        return {}

    def run_cluster(self):
        a = self.args
        self.cluster = LocalCluster(os.path.join(self.work, "cluster"), partitions=a.partitions,
                                    replicas=a.replicas, tokens=self.f.tokens_file, bin_dir=self.build)
        log(f"cluster: {a.partitions} partition(s) x {a.replicas} replica(s), 3 nats-server")
        env = self.cluster.up()
        self.nice_cluster()
        pids = self.node_pids()
        self.empty_rss = {k: proc_status(p)["VmRSS"] for k, p in pids.items()}
        cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
        seconds, applied, dups, reruns = self.submit_all(env["LOANLEDGER_SERVER"], pids)
        if applied != self.f.total_events:
            raise RuntimeError(f"cluster: applied {applied} of {self.f.total_events} events "
                               f"({dups} duplicates, {reruns} reruns)")
        ends = self.stream_ends()
        t = time.monotonic()
        self.wait_caught_up(list(self.cluster.nodes.values()), ends)
        catch_up = time.monotonic() - t
        cpu = sum(cpu_seconds(p) - cpu0[k] for k, p in pids.items())
        c = {"seconds": seconds, "events_per_s": self.f.total_events / seconds, "cpu_s": cpu,
             "reruns": reruns, "duplicates": dups, "catch_up_s": catch_up, "ends": ends}
        out(f"cluster {a.partitions} x {a.replicas}: {self.f.total_events:,} events in {seconds:.1f} s = "
            f"{c['events_per_s']:,.0f} events/s (loanledgerd CPU {cpu:.0f} s; {reruns} reruns, "
            f"{dups} duplicates); followers caught up {catch_up:.1f} s after the last ack; "
            f"max load average {self.max_load:.1f}; least free disk {self.min_free / 2**30:.1f} GiB")
        self.measure_nodes(c)
        return c

    def measure_nodes(self, c):
        a = self.args
        part_events, part_bytes, part_insts = {}, {}, {}
        for inst in self.f.names:
            p = fnv1a64(inst) % a.partitions
            part_events[p] = part_events.get(p, 0) + self.f.events[inst]
            part_bytes[p] = part_bytes.get(p, 0) + self.f.bytes[inst]
            part_insts[p] = part_insts.get(p, 0) + 1
        time.sleep(6)  # the stream storage gauges are read from JetStream every 5 s
        c["nodes"] = {}
        out("| node | partition | leader | loans | VmRSS (empty → loaded) | VmHWM | B/loan (RSS / HWM / RSS above empty) "
            "| peak RSS in load | store on disk | store B/loan |")
        out("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for key in sorted(self.cluster.nodes):
            n = self.cluster.nodes[key]
            st = self.stats(n.client())
            mem = proc_status(n.pid())
            loans = int(st["loans"])
            store = du(n.data)
            m = scrape(n.metrics())
            stream = {k.split("{")[0]: v for k, v in m.items() if k.startswith("loanledger_cluster_stream_")}
            row = {"partition": n.partition, "leader": st.get("cluster_leader") == "1", "loans": loans,
                   "rss": mem["VmRSS"], "hwm": mem["VmHWM"], "store": store,
                   "empty_rss": self.empty_rss.get(n.name, 0),
                   "stream_bytes": int(stream.get("loanledger_cluster_stream_bytes", -1)),
                   "stream_messages": int(stream.get("loanledger_cluster_stream_messages", -1)),
                   "events_applied": int(m.get("loanledger_events_applied_total", -1))}
            c["nodes"][n.name] = row
            out(f"| {n.name} | {n.partition} | {'yes' if row['leader'] else 'no'} | {loans:,} | "
                f"{mib(row['empty_rss'])} → {mib(row['rss'])} | {mib(row['hwm'])} | {row['rss'] / max(loans, 1):.0f} / "
                f"{row['hwm'] / max(loans, 1):.0f} / {(row['rss'] - row['empty_rss']) / max(loans, 1):.0f} | "
                f"{mib(self.peak_rss.get(n.name, 0))} | {mib(store)} | {store / max(loans, 1):.0f} |")
        js = self.jsz()
        c["partitions"] = {}
        out()
        out("| partition | institutions | events | CSV bytes | stream messages | stream bytes (one copy) | journal B/event | stream / CSV |")
        out("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for p in range(a.partitions):
            node = next(r for r in c["nodes"].values() if r["partition"] == p)
            sb, sm = node["stream_bytes"], node["stream_messages"]
            jm, jb = js.get(f"LOANLEDGER_P{p}", (None, None))
            if jb is not None and jb != sb:
                log(f"partition {p}: /jsz says {jb} bytes, the node's gauge {sb}")
            ev = part_events.get(p, 0)
            c["partitions"][p] = {"events": ev, "csv_bytes": part_bytes.get(p, 0), "stream_bytes": sb,
                                  "stream_messages": sm, "jsz": (jm, jb)}
            out(f"| {p} | {part_insts.get(p, 0)} | {ev:,} | {mib(part_bytes.get(p, 0))} | {sm:,} | {mib(sb)} | "
                f"{sb / max(ev, 1):.1f} | {sb / max(part_bytes.get(p, 1), 1):.2f} |")
        nats_disk = {n.name: du(n.store_dir) for n in self.cluster.nats.nodes.values()}
        c["nats_disk"] = nats_disk
        out()
        out("NATS JetStream stores on disk (every stream and KV bucket, one replica each): "
            + ", ".join(f"{k} {mib(v)}" for k, v in sorted(nats_disk.items())))

    # --- 5. reports
    def compare(self, ref, where):
        got = self.reports(self.cluster.node(0, 1).client())
        for name in REPORTS:
            if got[name] != ref["reports"][name]:
                g, w = got[name].get("rows", []), ref["reports"][name].get("rows", [])
                diff = [(x, y) for x, y in zip(g, w) if x != y][:2]
                raise RuntimeError(f"{where}: report {name} differs from the single node's "
                                   f"({len(g)} vs {len(w)} rows; first: {diff})")
        nat = got["national"].get("rows", [])
        out(f"{where}: reports national, by province ({len(got['province'].get('rows', []))} rows), by "
            f"institution ({len(got['institution'].get('rows', []))} rows) at {self.args.date} equal the single "
            f"node's to the fen ({len(nat)} national rows)")

    # --- 6. restart
    def restart(self, c, ref):
        a = self.args
        biggest = max(range(a.partitions), key=lambda p: c["partitions"][p]["events"])
        nodes = [n for n in self.cluster.nodes.values() if n.partition == biggest]
        if a.replicas > 1:
            node = next(n for n in nodes if not c["nodes"][n.name]["leader"])
        else:
            node = nodes[0]
        loans = c["nodes"][node.name]["loans"]
        ends = c["ends"]
        c["restart"] = {"node": node.name, "loans": loans}
        for how in ("SIGKILL", "SIGTERM"):  # the crash first: its journal tail is the load's
            tail = int(self.stats(node.client()).get("events_since_loan_snapshot", 0))
            t = time.monotonic()
            if how == "SIGTERM":
                self.cluster.stop_node(node.partition, node.replica)
            else:
                self.cluster.kill9(node.partition, node.replica)
            stop_s = time.monotonic() - t
            t = time.monotonic()
            self.cluster.start_node(node.partition, node.replica)
            ready_s = time.monotonic() - t
            set_autogroup_nice(node.pid(), a.autogroup_nice)
            self.wait_caught_up([node], ends, RESTART_TIMEOUT_S)
            caught_s = time.monotonic() - t
            leader_s = None
            if a.replicas == 1:
                while node.is_leader() is not True and time.monotonic() - t < RESTART_TIMEOUT_S:
                    time.sleep(0.1)
                leader_s = time.monotonic() - t
            c["restart"][how] = {"stop_s": stop_s, "ready_s": ready_s, "caught_up_s": caught_s,
                                 "leader_s": leader_s, "journal_tail": tail}
            out(f"restart of {node.name} ({loans:,} loans) after {how}: stop {stop_s:.1f} s; "
                f"serving (ready file) {ready_s:.1f} s, caught up {caught_s:.1f} s"
                + (f", leader again {leader_s:.1f} s" if leader_s is not None else "")
                + f"; journal since the last loan snapshot at the stop: {tail:,} events")
        mem = proc_status(node.pid())
        c["restart"]["rss_after"] = mem["VmRSS"]
        out(f"  {node.name} after the restarts: VmRSS {mib(mem['VmRSS'])} = {mem['VmRSS'] / max(loans, 1):.0f} B/loan")
        if ref:
            self.compare(ref, "after the restarts")

    # --- 7. the model
    def against_model(self, c, ref):
        a = self.args
        out()
        out("| figure | model (docs/capacity.md) | measured |")
        out("| --- | --- | --- |")
        per_loan = [r["rss"] / r["loans"] for r in c["nodes"].values() if r["loans"]]
        hwm = [r["hwm"] / r["loans"] for r in c["nodes"].values() if r["loans"]]
        above = [(r["rss"] - r["empty_rss"]) / r["loans"] for r in c["nodes"].values() if r["loans"]]
        out(f"| memory per loan (RSS after the load / peak / RSS above an empty node's) | ≤ {MODEL_BYTES_PER_LOAN_PEAK} B "
            f"(more on small nodes: a fixed ~100 MiB) | "
            f"{min(per_loan):.0f}–{max(per_loan):.0f} B / {min(hwm):.0f}–{max(hwm):.0f} B / "
            f"{min(above):.0f}–{max(above):.0f} B |")
        if r := c.get("restart"):
            out(f"| memory per loan after a restart ({r['node']}) | {MODEL_BYTES_PER_LOAN_REST[0]}–"
                f"{MODEL_BYTES_PER_LOAN_REST[1]} B (+ ~130 MiB) | "
                f"{r['rss_after'] / max(r['loans'], 1):.0f} B |")
        r = c.get("restart")
        if r:
            lo, hi = (k * r["loans"] / 1e6 for k in MODEL_RESTART_S_PER_MILLION_LOANS)
            pred = f"{lo:.1f}–{hi:.1f}"
            out(f"| restart to serving, {r['loans']:,} loans (clean stop) | {pred} s | "
                f"{r['SIGTERM']['ready_s']:.1f} s (caught up {r['SIGTERM']['caught_up_s']:.1f} s) |")
            out(f"| restart after kill -9 | {pred} s + the journal tail ({r['SIGKILL']['journal_tail']:,} events) | "
                f"{r['SIGKILL']['ready_s']:.1f} s (caught up {r['SIGKILL']['caught_up_s']:.1f} s) |")
        jb = [(p["stream_bytes"] / p["events"], p["stream_bytes"] / p["csv_bytes"])
              for p in c["partitions"].values() if p["events"]]
        out(f"| journal in the stream | {MODEL_JOURNAL_BYTES_PER_EVENT} B/event per copy, 0.65 × the CSV | "
            f"{min(x for x, _ in jb):.1f}–{max(x for x, _ in jb):.1f} B/event, "
            f"{min(y for _, y in jb):.2f}–{max(y for _, y in jb):.2f} × the CSV; × 3 NATS servers |")
        if ref:
            share = c["events_per_s"] / ref["events_per_s"]
            out(f"| cluster events/s against the single node's | {MODEL_REPLICATED_SHARE[0]:.0%}–"
                f"{MODEL_REPLICATED_SHARE[1]:.0%} (1 × 3 here) | {share:.0%} ({c['events_per_s']:,.0f} vs "
                f"{ref['events_per_s']:,.0f}, {a.partitions} × {a.replicas}) |")

    def run(self):
        a = self.args
        st = os.statvfs(self.work)
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip() or "?"
        with open("/proc/meminfo") as f:
            mem_total = int(f.readline().split()[1]) * 1024
        out(f"machine: {os.cpu_count()} cores, {mem_total / 2**30:.1f} GiB, {st.f_bavail * st.f_frsize / 2**30:.0f} GiB "
            f"free on {self.work}; load {loadavg()}; commit {commit}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
        out(f"command: bench/capacity_check.py {' '.join(sys.argv[1:])}; binaries: {self.build}")
        self.f = Files(a, self.cli, self.work)
        out(f"input: {self.f.dir}: {len(self.f.names)} files, {self.f.total_events:,} events, "
            f"{mib(sum(self.f.bytes.values()))} of CSV")
        ev = self.f.total_events
        out(f"disk needed, roughly: reference store {mib(ev * 70)}, then the cluster's streams "
            f"{mib(ev * 62 * 3)} (3 copies) and stores {mib(ev * 70 * a.replicas)}; "
            f"{st.f_bavail * st.f_frsize / 2**30:.0f} GiB free")
        ref = self.reference()
        c = self.run_cluster()
        if ref:
            self.compare(ref, "cluster")
        if not a.no_restart:
            self.restart(c, ref)
        self.against_model(c, ref)
        out(f"done; load {loadavg()}; {time.strftime('%H:%M UTC', time.gmtime())}")

    def cleanup(self):
        if self.single is not None:
            self.single.stop()
        if self.cluster is not None:
            self.cluster.down()
        if not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)
        else:
            log(f"kept {self.work}")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.environ.get("BUILD_DIR", os.path.join(ROOT, "build")))
    ap.add_argument("--scale", default="0.001")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--banks", type=int, default=200, help="0: the model's 160")
    ap.add_argument("--before", default="", help="only events before this date (gen --before)")
    ap.add_argument("--partitions", type=int, default=2)
    ap.add_argument("--replicas", type=int, default=1)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--date", default="2024-09-30", help="the reports' date")
    ap.add_argument("--reference", choices=("cli", "load", "none"), default="cli")
    ap.add_argument("--no-restart", action="store_true")
    ap.add_argument("--cache", default="/tmp/loanledger-workloads")
    ap.add_argument("--work", default="")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--autogroup-nice", type=int, default=None)
    ap.add_argument("--min-free-gib", type=float, default=4.0,
                    help="stop the submissions when the work directory's disk has less free")
    args = ap.parse_args(argv)
    if not os.path.isabs(args.build):
        args.build = os.path.join(ROOT, args.build)
    r = Runner(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        r.run()
    finally:
        r.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
