#!/usr/bin/env python3
"""The workloads of bench/ (issue 14) at a tiny scale, against real servers.

1. `loanledger gen` refuses bad values of its workload flags with a clear message (exit 1).
2. A backfill (`gen --banks 80 --before D --out-dir`) through `loanledger-load --files`, then
   the day's files (`gen --day D --out-dir`) through one `loanledger submit` per bank: every
   event applied, none rejected or duplicate; the store holds every loan of both.
3. The load tool's file mode refuses a file whose institution has no token (exit 2).
4. bench/workload.sh a, b (also --via load) and c each run to the end at a tiny scale and print
   events/s, the server's RSS and (c) report latencies. No timing is asserted.

usage: workloads_test.py BUILD_DIR
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
import ll_server  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCALE = "1e-4"
SEED = "3"
BANKS = "80"
DAY = "2024-06-03"
TIMEOUT_S = 240


def run(argv, expect=0, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S, **kw)
    if r.returncode != expect:
        raise AssertionError(f"{argv}: exit {r.returncode}, expected {expect}\n{r.stdout}\n{r.stderr}")
    return r


def check_refusals(ll, work):
    cases = [
        (["--banks", "0"], "bad --banks"),
        (["--banks", "10000"], "bad --banks"),
        (["--banks", "many"], "bad --banks"),
        (["--day", "2024-13-01"], "bad --day"),
        (["--before", "yesterday"], "bad --before"),
        (["--day", DAY, "--before", DAY], "--day or --before, not both"),
        (["--out", os.path.join(work, "x.csv"), "--out-dir", work], "--out or --out-dir, not both"),
        (["--day", "2025-02-03"], "not within the history"),
        (["--before", "2022-01-01"], "not within the history"),
    ]
    for args, message in cases:
        r = run([ll, "gen", "--scale", "1e-6", *args], expect=1)
        assert message in r.stderr, (args, r.stderr)
    os.makedirs(os.path.join(work, "full"))
    open(os.path.join(work, "full", "B0001.csv"), "w").close()
    r = run([ll, "gen", "--scale", "1e-6", "--out-dir", os.path.join(work, "full")], expect=1)
    assert "already holds CSV files" in r.stderr, r.stderr


def gen_dir(ll, out, *args):
    r = run([ll, "gen", "--scale", SCALE, "--seed", SEED, "--banks", BANKS, *args, "--out-dir", out])
    m = re.search(r"written=(\d+) files=(\d+)", r.stderr)
    assert m, r.stderr
    return int(m.group(1)), int(m.group(2))


def csv_rows(directory):
    rows = []
    for path in sorted(glob.glob(os.path.join(directory, "*.csv"))):
        with open(path) as f:
            lines = f.read().splitlines()
        inst = os.path.basename(path)[:-4]
        assert all(line.split(",", 1)[0] == inst for line in lines[1:]), path
        rows += [line.split(",") for line in lines[1:]]
    return rows


def tokens_for(ll, institutions, work):
    tokens, pairs = [], {}
    for inst in sorted(institutions):
        out = run([ll, "token", "new", "--role", "institution", "--institution", inst]).stdout.split("\n")
        pairs[inst] = out[0]
        tokens.append(out[1])
    for role in ("regulator", "admin"):
        out = run([ll, "token", "new", "--role", role]).stdout.split("\n")
        pairs[role] = out[0]
        tokens.append(out[1])
    with open(os.path.join(work, "tokens"), "w") as f:
        f.write("\n".join(tokens) + "\n")
    with open(os.path.join(work, "institution-tokens"), "w") as f:
        f.writelines(f"{i} {pairs[i]}\n" for i in sorted(institutions))
    return pairs


def check_backfill_then_day(build, ll, load, work):
    history, day = os.path.join(work, "history"), os.path.join(work, "day")
    h_events, h_files = gen_dir(ll, history, "--before", DAY)
    d_events, d_files = gen_dir(ll, day, "--day", DAY)
    h_rows, d_rows = csv_rows(history), csv_rows(day)
    assert len(h_rows) == h_events and len(d_rows) == d_events, (h_events, d_events)
    assert d_events > 20 and h_files > 40, (d_events, h_files)
    assert all(r[3] < DAY for r in h_rows) and all(r[3] == DAY for r in d_rows)
    institutions = {r[0] for r in h_rows + d_rows}
    pairs = tokens_for(ll, institutions, work)
    srv = ll_server.start_loanledgerd(build, os.path.join(work, "data"), os.path.join(work, "tokens"),
                                      os.path.join(work, "server.log"))
    try:
        address = srv.address()
        r = run([load, "--server", address, "--tokens", os.path.join(work, "institution-tokens"),
                 "--files", history, "--connections", "3", "--batch", "500",
                 "--regulator-token", pairs["regulator"], "--report-interval-ms", "5", "--both-reports"])
        assert f"events={h_events} " in r.stdout and f"files={h_files}" in r.stdout, r.stdout
        assert "events_per_s=" in r.stdout, r.stdout
        for path in sorted(glob.glob(os.path.join(day, "*.csv"))):
            inst = os.path.basename(path)[:-4]
            r = run([ll, "submit", path, "--server", address, "--token", pairs[inst]])
            counts = dict(re.findall(r"(applied|duplicates|rejected)=(\d+)", r.stdout + r.stderr))
            assert counts.get("rejected") == "0" and counts.get("duplicates") == "0", (path, r.stdout, r.stderr)
            assert int(counts["applied"]) == sum(1 for row in d_rows if row[0] == inst), (path, r.stdout)
        stats = run([ll, "admin", "stats", "--server", address, "--token", pairs["admin"]]).stdout
        loans = int(re.search(r"^loans (\d+)$", stats, re.M).group(1))
        assert loans == len({(row[0], row[1]) for row in h_rows + d_rows}), (loans, stats)
        # A file of an institution without a token: the load tool stops with exit 2.
        stray = os.path.join(work, "stray")
        os.makedirs(stray)
        with open(glob.glob(os.path.join(day, "*.csv"))[0]) as f:
            header, line = f.readline(), f.readline()
        with open(os.path.join(stray, "ZZZ.csv"), "w") as f:
            f.write(header + "ZZZ," + line.split(",", 1)[1])
        r = run([load, "--server", address, "--tokens", os.path.join(work, "institution-tokens"),
                 "--files", stray], expect=2)
        assert "no token for institution ZZZ" in r.stderr, r.stderr
        srv.stop()
    finally:
        if srv.running():
            srv.kill9()


def check_bench_scripts(build, work):
    env = dict(os.environ, BUILD_DIR=build)
    cache = os.path.join(work, "cache")
    script = os.path.join(ROOT, "bench", "workload.sh")
    for args in (["a", "--scale", "1e-5"], ["b", "--scale", "2e-5", "--banks", "200"],
                 ["b", "--scale", "2e-5", "--banks", "200", "--via", "load"],
                 ["c", "--scale", "1e-4", "--day", DAY, "--report-interval-ms", "2"]):
        r = run([script, *args, "--parallel", "2", "--cache", cache], env=env)
        out = r.stdout
        assert re.search(r"events_per_s=\d+", out), (args, out, r.stderr)
        assert "VmRSS" in out and "VmHWM" in out, (args, out)
        if args[0] == "b" and "load" not in args:
            assert re.search(r"banks 200\): events=\d+ files=(\d+) via=cli processes=\1 ", out), out
        if "load" in args:
            assert re.search(r"banks 200\): events=\d+ files=\d+ via=load processes=1 ", out), out
        if args[0] == "c":
            assert re.search(r"store: loans=\d+", out), out
            assert "report_latency_ms p50=" in out and "report_latency_ms(by province) p50=" in out, out
            # The server's own report times: cumulative shares, the last bucket (10 ms) at most 100 %.
            m = re.search(r"server-side report time during the load \((\d+) reports, "
                          r"loanledger_query_seconds\): (.*)", out)
            assert m and int(m.group(1)) > 0, out
            shares = [float(x) for x in re.findall(r"<= [\d.]+ ms ([\d.]+)%", m.group(2))]
            assert len(shares) == 6 and shares == sorted(shares) and shares[-1] <= 100.0, out
        print(f"workload.sh {' '.join(args)}:\n{out}")
    # --rate paces the load tool: the last batch cannot leave before events / rate seconds (a
    # lower bound that sleeping guarantees, not a timing of the machine).
    base = ["b", "--scale", "2e-5", "--banks", "200", "--via", "load", "--parallel", "2", "--cache", cache]
    events = int(re.search(r"events=(\d+)", run([script, *base], env=env).stdout).group(1))
    rate = max(1, events // 2)  # about 2 s
    out = run([script, *base, "--rate", str(rate)], env=env).stdout
    seconds = float(re.search(r"seconds=([\d.]+)", out).group(1))
    assert seconds >= events / rate - 0.01, (events, rate, out)
    r = run([script, "b", "--scale", "2e-5", "--rate", "1000", "--cache", cache], env=env, expect=1)
    assert "--rate needs --via load" in r.stderr, r.stderr


def main():
    build = os.path.abspath(sys.argv[1])
    ll = os.path.join(build, "client", "loanledger")
    load = os.path.join(build, "bench", "loanledger-load")
    for binary in (ll, load, os.path.join(build, "server", "loanledgerd")):
        if not os.path.exists(binary):
            print(f"skipped: {binary} is not built")
            return 77
    work = tempfile.mkdtemp(prefix="loanledger-workloads-test-")
    try:
        check_refusals(ll, work)
        check_backfill_then_day(build, ll, load, work)
        check_bench_scripts(build, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
