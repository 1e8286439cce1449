"""Shared by the cluster fault tests (cluster_faults_test.py) and the long-mode
leader kill loop (leader_kill_loop.py); Python 3 stdlib only.

A workload is `loanledger gen --scale 0.00002 --seed 5` split into one CSV per
institution (as scripts/quickstart.sh does), each with its institution's token,
plus admin and regulator tokens, all in one tokens file. The reference is a
single plain loanledgerd (port 0, tests/support/ll_server.py) fed the same
files: the cluster's reports must equal its reports to the fen.

A Submitter runs `loanledger submit --server A,B,C` file after file in a
thread, rerunning a file whose CLI exits non-zero (bounded); the sum of
`applied=` over every run of every file must equal the workload's event count:
an acknowledged batch that was lost would be applied again by the rerun (sum
too high), one applied twice would show in the figures.
"""
import datetime
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

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "support"))
from ll_server import start_loanledgerd  # noqa: E402
from local_cluster import scrape  # noqa: E402

SCALE = "0.00002"
SEED = "5"
REPORT_DATE = "2024-09-30"
REPORTS = {"national": [], "province": ["--by", "province"], "institution": ["--by", "institution"]}
CLI_TIMEOUT_S = 90.0
RERUNS = 5
SUMMARY = re.compile(r"applied=(\d+) duplicates=(\d+) batches=(\d+) rejected=(\d+)")
# The first line of a sanitizer's report: TSan's; ASan's and LSan's; UBSan's (FILE:LINE:COL: ...).
SANITIZER_REPORT = re.compile(r"WARNING: ThreadSanitizer|ERROR: (?:Address|Leak)Sanitizer"
                              r"|^\S+:\d+:\d+: runtime error: ", re.MULTILINE)
SANITIZER_REPORT_LINES = 60  # of a report, printed by finish(): its kind, the stacks, the threads


class Failure(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Workload:
    def __init__(self, build, work):
        self.build = os.path.abspath(build)
        self.cli = os.path.join(self.build, "client", "loanledger")
        self.work = work
        self.csv_dir = os.path.join(work, "csv")
        self.tokens = os.path.join(work, "tokens")
        self.files = []  # [(institution, path, token)]
        self.events = 0
        self.counts = {}  # institution -> events in its file

    def run_cli(self, args, timeout_s=CLI_TIMEOUT_S, check_rc=True):
        p = subprocess.run([self.cli, *args], capture_output=True, text=True, timeout=timeout_s)
        if SANITIZER_REPORT.search(p.stderr):
            # A sanitizer build's CLI: kept where finish() looks, since a caller that retries a
            # failed command would otherwise drop the report with the output.
            fd, path = tempfile.mkstemp(prefix="cli-", suffix=".log", dir=self.work)
            with os.fdopen(fd, "w") as f:
                f.write(f"loanledger {' '.join(args)}\n{p.stderr}")
        if check_rc and p.returncode != 0:
            raise Failure(f"loanledger {' '.join(args)} exited {p.returncode}: {p.stderr.strip()}")
        return p

    def _token(self, *args):
        out = self.run_cli(["token", "new", *args]).stdout.splitlines()
        return out[0], out[1]

    def prepare(self):
        os.makedirs(self.csv_dir, exist_ok=True)
        portfolio = os.path.join(self.work, "portfolio.csv")
        self.run_cli(["gen", "--scale", SCALE, "--seed", SEED, "--out", portfolio])
        handles = {}
        with open(portfolio) as f:
            header = f.readline()
            for line in f:
                inst = line.split(",", 1)[0]
                h = handles.get(inst)
                if h is None:
                    h = handles[inst] = open(os.path.join(self.csv_dir, f"{inst}.csv"), "w")
                    h.write(header)
                h.write(line)
                self.events += 1
                self.counts[inst] = self.counts.get(inst, 0) + 1
        for h in handles.values():
            h.close()
        lines = []
        for inst in sorted(handles):
            token, line = self._token("--role", "institution", "--institution", inst)
            self.files.append((inst, os.path.join(self.csv_dir, f"{inst}.csv"), token))
            lines.append(line)
        self.admin, line = self._token("--role", "admin")
        lines.append(line)
        self.regulator, line = self._token("--role", "regulator")
        lines.append(line)
        fd = os.open(self.tokens, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")
        log(f"workload: {len(self.files)} institution files, {self.events} events")

    # --- queries
    def reports(self, server):
        return {name: json.loads(self.run_cli(["report", "--date", REPORT_DATE, "--format", "json", *extra,
                                               "--server", server, "--token", self.regulator]).stdout)
                for name, extra in REPORTS.items()}

    def stats(self, server, timeout_s=10.0):
        text = self.run_cli(["admin", "stats", "--server", server, "--token", self.admin],
                            timeout_s=timeout_s).stdout
        out = {}
        for line in text.splitlines():
            m = re.fullmatch(r"state_digest (\S+) at stream seq (\d+)", line)
            if m:
                out["state_digest"], out["digest_seq"] = m.group(1), int(m.group(2))
            elif " " in line:
                k, v = line.split(" ", 1)
                out[k] = v
        return out

    def reference(self):
        """Reports of one plain loanledgerd fed every file."""
        data = os.path.join(self.work, "single", "data")
        os.makedirs(data, exist_ok=True)
        srv = start_loanledgerd(self.build, data, self.tokens, os.path.join(self.work, "single", "loanledgerd.log"))
        try:
            applied = 0
            for inst, path, token in self.files:
                out = self.run_cli(["submit", "--server", srv.address(), "--token", token, path]).stdout
                applied += int(SUMMARY.findall(out)[-1][0])
            check(applied == self.events, f"single node applied {applied} of {self.events} events")
            return self.reports(srv.address())
        finally:
            srv.stop()


def compare_reports(got, want, where):
    for name in REPORTS:
        if got[name] != want[name]:
            g, w = got[name].get("rows", []), want[name].get("rows", [])
            diff = [(a, b) for a, b in zip(g, w) if a != b][:3]
            raise Failure(f"{where}: report {name} differs from the single node's "
                          f"({len(g)} vs {len(w)} rows; first differences: {diff})")


class Submitter(threading.Thread):
    """Submits every file (in order) through the CLI with --server `servers`; reruns a file whose
    CLI exits non-zero, at most RERUNS times. `progress` counts files done."""

    def __init__(self, workload, servers, batch_size=10, files=None):
        super().__init__(daemon=True)
        self.w, self.servers, self.batch_size = workload, servers, batch_size
        self.files = files if files is not None else workload.files
        self.runs = []  # (institution, rc, applied, duplicates, stderr tail)
        self.applied = 0
        self.done_files = 0
        self.error = None

    def run(self):
        try:
            for inst, path, token in self.files:
                for attempt in range(RERUNS + 1):
                    try:
                        p = self.w.run_cli(["submit", "--server", self.servers, "--token", token,
                                            "--batch-size", str(self.batch_size), path], check_rc=False)
                        rc, out, err = p.returncode, p.stdout, p.stderr
                    except subprocess.TimeoutExpired:
                        rc, out, err = "timeout", "", ""
                    m = SUMMARY.findall(out)
                    applied, dups = (int(m[-1][0]), int(m[-1][1])) if m else (0, 0)
                    self.applied += applied
                    self.runs.append((inst, rc, applied, dups, err.strip()[-300:]))
                    if rc == 0:
                        break
                    log(f"submit {inst} attempt {attempt + 1}: rc={rc} applied={applied}: {err.strip()[-300:]}")
                    time.sleep(0.5)
                else:
                    raise Failure(f"submit of {inst} failed {RERUNS + 1} times; last: {self.runs[-1]}")
                self.done_files += 1
        except BaseException as e:  # reported by finish()
            self.error = e

    def finish(self, timeout_s=300.0):
        self.join(timeout_s)
        check(not self.is_alive(), f"the submission did not finish within {timeout_s:.0f} s")
        if self.error:
            raise self.error
        reruns = sum(1 for r in self.runs if r[1] != 0)
        dups = sum(r[3] for r in self.runs)
        log(f"submission done: {len(self.runs)} CLI runs ({reruns} non-zero), applied={self.applied} "
            f"duplicates={dups}")
        for r in self.runs:
            if r[1] != 0 or r[3]:
                log(f"  {r[0]}: rc={r[1]} applied={r[2]} duplicates={r[3]}")
        self.check_counts()
        return reruns

    def check_counts(self):
        """Per file: the last run (rc 0) accounts for every event (applied + duplicates); the applied
        counts of all its runs sum to at most its events (an acknowledged batch lost and resent
        would be applied again). Duplicates are batches made durable whose ack the CLI never got."""
        by_file = {}
        for inst, rc, applied, dups, _ in self.runs:
            by_file.setdefault(inst, []).append((rc, applied, dups))
        for inst, _, _ in self.files:
            runs = by_file.get(inst, [])
            want = self.w.counts[inst]
            check(runs and runs[-1][0] == 0, f"{inst}: no successful run: {runs}")
            check(runs[-1][1] + runs[-1][2] == want, f"{inst}: last run applied+duplicates "
                                                     f"{runs[-1][1]}+{runs[-1][2]} != {want} events")
            check(sum(r[1] for r in runs) <= want, f"{inst}: runs applied {sum(r[1] for r in runs)} > "
                                                   f"{want} events: an acknowledged batch was applied again")


def sanitizer_reports(work):
    """[(log path, the report's first lines)] for every log under `work` (each loanledgerd's, the
    single node's, a CLI's kept by run_cli) that holds a sanitizer's report (ThreadSanitizer,
    AddressSanitizer, LeakSanitizer, UBSan). A sanitizer build stops a process at its first report
    (halt_on_error=1, scripts/sanitize.sh), but that alone need not fail a cluster test: another
    replica takes over from a node that died, and a report during a node's shutdown (a leak
    found at exit) only changes an exit code nobody reads. Suppressed reports print nothing, so
    every one found here counts."""
    found = []
    for root, _, names in os.walk(work):
        for name in sorted(names):
            if name != "loanledgerd.log" and not (name.startswith("cli-") and name.endswith(".log")):
                continue  # e.g. RocksDB's write-ahead logs (data/NNNNNN.log)
            path = os.path.join(root, name)
            with open(path, errors="replace") as f:
                text = f.read()
            m = SANITIZER_REPORT.search(text)
            if m:
                found.append((path, "".join(text[m.start():].splitlines(True)[:SANITIZER_REPORT_LINES])))
    return found


def finish(cluster, ok, keep, work, passed):
    """A cluster test's teardown: resume any node left paused (SIGSTOP), stop the
    cluster, fail on any sanitizer's report in a log (sanitizer_reports), remove the
    work dir unless the test failed or --keep; print `passed` on success. Returns
    the exit code."""
    if cluster is not None:
        for n in cluster.nodes.values():
            if n.running():
                try:
                    os.kill(n.pid(), signal.SIGCONT)
                except (ProcessLookupError, TypeError):
                    pass
        cluster.down()
    for path, report in sanitizer_reports(work):
        print(f"FAIL: sanitizer report in {path}:\n{report}", file=sys.stderr)
        ok = False
    if ok and not keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"work dir kept: {work}", file=sys.stderr)
    if ok:
        print(passed)
    return 0 if ok else 1


def wait_until(probe, timeout_s, what, poll_s=0.05):
    deadline = time.monotonic() + timeout_s
    while True:
        v = probe()
        if v:
            return v
        if time.monotonic() > deadline:
            raise Failure(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(poll_s)


def metric(samples, name):
    for k, v in samples.items():
        if k.split("{")[0] == name:
            return v
    return None


def measure_failover(nodes, t0, timeout_s=20.0):
    """Seconds from t0 (the leader's death) until a surviving node is leader and has applied (and so
    acknowledged) a batch it published itself: its applied stream seq passes the value it had when it
    was first seen leading. `nodes` are LoanledgerNode of the survivors. The gauges refresh every
    second (--metrics-refresh-ms), so that only detects it; the seconds returned are those of the
    new leader's log line "first group acknowledged as leader" (failover_breakdown) when it has
    one, else of the detection. That line is looked for first, every round: a new leader may
    acknowledge the rest of the submission within one refresh of the gauges, so that its applied
    seq never rises after it is first seen leading."""
    base = {}
    deadline = t0 + timeout_s
    kill_wall = time.time() - (time.monotonic() - t0)
    while time.monotonic() < deadline:
        for n in nodes:
            b = failover_breakdown(n, kill_wall)
            if b and "first_ack" in b:
                return b["first_ack"], n
        for n in nodes:
            try:
                s = scrape(n.metrics(), timeout_s=1.0)
            except (OSError, ValueError):
                continue
            if metric(s, "loanledger_cluster_is_leader") != 1:
                base.pop(n.name, None)
                continue
            seq = metric(s, "loanledger_cluster_applied_stream_seq")
            if n.name not in base:
                base[n.name] = seq
            elif seq > base[n.name]:
                seen = time.monotonic() - t0
                b = failover_breakdown(n, kill_wall)
                return (b["first_ack"] if b and "first_ack" in b else seen), n
        time.sleep(0.02)
    raise Failure(f"no batch acknowledged by a new leader within {timeout_s:.0f} s of the leader's death")


LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}) \S+ (.*)$")
LEASE_S = 3.0  # loanledgerd's default --lease-ms


def failover_breakdown(node, kill_wall, lease_s=LEASE_S):
    """From the new leader's log (loanledgerd's local-time timestamps, ms): seconds after the kill
    (wall clock `kill_wall`) at which the dead leader's key expired (its last renewal + the TTL,
    as the new leader last read it), the new leader took the lease, the client's session on it was
    authenticated (the last one before the first ack; negative when it connected before), it had
    caught up and served, and it acknowledged its first group. None without the lease line."""
    out = {}
    auth = None
    with open(node.log, errors="replace") as f:
        for line in f:
            m = LOG_TIME.match(line)
            if not m:
                continue
            t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").timestamp() - kill_wall
            text = m.group(2)
            if t < -5.0:
                continue
            if ": authenticated " in text:
                auth = t
            elif "taken" not in out:
                lm = re.search(r"leads partition \d+ .*renewed (-?\d+) ms ago", text)
                if lm and t >= 0:
                    out["taken"] = t
                    if int(lm.group(1)) >= 0:
                        out["expiry"] = t - int(lm.group(1)) / 1000.0 + lease_s
            elif "serving as leader" in text and "serving" not in out:
                out["serving"] = t
            elif "first group acknowledged as leader" in text:
                out["first_ack"] = t
                if auth is not None:
                    out["client_in"] = auth
                break
    return out or None


def converge(workload, nodes, timeout_s=60.0):
    """Waits until every node's admin stats show the same applied seq as the stream's last and no lag;
    returns {name: stats}. Checks state digests are equal at that same stream seq."""
    def probe():
        try:
            st = {n.name: workload.stats(n.client()) for n in nodes}
        except (Failure, subprocess.TimeoutExpired):
            return None
        seqs = {s.get("digest_seq") for s in st.values()}
        lasts = {s.get("cluster_stream_last_seq") for s in st.values()}
        if len(seqs) == 1 and lasts == {str(next(iter(seqs)))} and \
                all(s.get("cluster_replication_lag_events") == "0" for s in st.values()):
            return st
        return None
    st = wait_until(probe, timeout_s, "replicas at the same stream seq", poll_s=0.3)
    digests = {name: (s["state_digest"], s["digest_seq"]) for name, s in st.items()}
    check(len(set(digests.values())) == 1, f"state digests differ: {digests}")
    log(f"digests equal: {next(iter(digests.values()))} on {sorted(digests)}")
    return st


def leader_of(cluster, timeout_s=20.0):
    """The one node that leads partition 0 (waits for exactly one)."""
    def probe():
        rs = (cluster.leaders() or {}).get(0, [])
        return rs if len(rs) == 1 else None
    return cluster.node(0, wait_until(probe, timeout_s, "one leader")[0])
