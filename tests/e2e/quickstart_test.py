#!/usr/bin/env python3
"""End-to-end: the quick start at a small scale (issue: portfolio generator).

Runs scripts/quickstart.sh with already-built binaries, a temporary home and
port 0 (the server binds free ports itself and writes them to its ready
file, HOME/loanledgerd.ready: tests/support/ll_server.py): generate the calibrated portfolio, split it per institution,
make tokens, start loanledgerd, submit every file through the CLI, report.
Then checks the 2024-09-30 report against docs/domain.md: balances within the
published precision x scale, growth within 0.05 percentage points, and
Shanghai's technology-enterprise, green and inclusive loans growing >= 10%.
Also runs `loanledgerd --verify` on the data afterwards. Stops the server by
its PID whatever happens.

usage: quickstart_test.py BUILD_DIR [SCALE]
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import urllib.request
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
from ll_server import read_ready_file  # noqa: E402

# docs/domain.md: (category, balance in trillion yuan or None, yoy %, balance precision in trillion)
PUBLISHED = [("MANUFACTURING_MLT", 13.88, 14.8, 0.01), ("HIGH_TECH_MANUFACTURING", None, 12.0, None),
             ("SRDI", 4.26, 13.5, 0.01), ("INCLUSIVE_SMALL_MICRO", 32.90, 14.5, 0.01)]
SHANGHAI = ["TECH_ENTERPRISE", "GREEN", "INCLUSIVE_SMALL_MICRO"]


def check_national(report, scale):
    """The national rows of report.json against docs/domain.md: a list of failures."""
    failures = []
    rows = {r["category"]: r for r in report["rows"] if r["group"] is None}
    for cat, tn, yoy, precision in PUBLISHED:
        r = rows[cat]
        if tn is not None:
            target_fen = tn * 1e12 * scale * 100
            tolerance_fen = precision / 2 * 1e12 * scale * 100
            if abs(r["balance_fen"] - target_fen) > tolerance_fen:
                failures.append(f"{cat} balance {r['balance_fen']} fen, target {target_fen:.0f}")
        if r["yoy_growth_pct"] is None or abs(r["yoy_growth_pct"] - yoy) > 0.05:
            failures.append(f"{cat} yoy {r['yoy_growth_pct']}, target {yoy}")
        print(f"{cat:<26} balance_fen={r['balance_fen']:>16} yoy={r['yoy_growth_pct']}")
    return failures


def check_shanghai(by_province_rows):
    """Shanghai's three fast-growing categories (>= 10%) in a report by province: failures."""
    failures = []
    for cat in SHANGHAI:
        row = [r for r in by_province_rows if r["category"] == cat and r["group"] == "31"]
        if not row or row[0]["yoy_growth_pct"] is None or row[0]["yoy_growth_pct"] < 10.0:
            failures.append(f"Shanghai {cat} growth {row[0]['yoy_growth_pct'] if row else None} < 10%")
        else:
            print(f"Shanghai {cat:<22} yoy={row[0]['yoy_growth_pct']:.2f}")
    return failures


def main():
    build = os.path.abspath(sys.argv[1])
    scale = float(sys.argv[2]) if len(sys.argv) > 2 else 2e-5
    failures = []
    with tempfile.TemporaryDirectory(prefix="loanledger-e2e-") as home:
        env = dict(os.environ, LOANLEDGER_HOME=home, LOANLEDGER_BIN_DIR=build,
                   LOANLEDGER_PORT="0", LOANLEDGER_METRICS_PORT="0", LOANLEDGER_HTTP_PORT="0",
                   LOANLEDGER_SCALE=repr(scale), LOANLEDGER_SEED="7")
        pid = None
        try:
            run = subprocess.run(["bash", os.path.join(ROOT, "scripts/quickstart.sh")], env=env,
                                 capture_output=True, text=True, timeout=600)
            if os.path.exists(os.path.join(home, "loanledgerd.pid")):
                pid = int(open(os.path.join(home, "loanledgerd.pid")).read())
            print(run.stdout)
            if run.returncode != 0:
                print(run.stderr, file=sys.stderr)
                print(f"FAIL: quickstart exited {run.returncode}")
                return 1
            ready = read_ready_file(os.path.join(home, "loanledgerd.ready"))
            if not ready or ready.get("pid") != str(pid) or "listen" not in ready:
                print(f"FAIL: no ready file naming the server's pid {pid} and address: {ready}")
                return 1
            report = json.load(open(os.path.join(home, "report.json")))
            failures += check_national(report, scale)
            token = open(os.path.join(home, "regulator.token")).read().strip()
            # The console URL it prints is served, and the HTTP API gives the same report.
            if "http" not in ready or f"http://{ready['http']}/#token={token}&date=2024-09-30" not in run.stderr:
                failures.append(f"quickstart printed no console URL for {ready.get('http')}")
            else:
                page = urllib.request.urlopen(f"http://{ready['http']}/", timeout=10).read().decode()
                if "<html" not in page.lower():
                    failures.append("GET / is not the console page")
                req = urllib.request.Request(f"http://{ready['http']}/v1/report?date=2024-09-30",
                                             headers={"Authorization": f"Bearer {token}"})
                if json.loads(urllib.request.urlopen(req, timeout=10).read())["rows"] != report["rows"]:
                    failures.append("GET /v1/report differs from the CLI's report.json")
            # Shanghai by province, through the CLI with the regulator token.
            out = subprocess.run([os.path.join(build, "client/loanledger"), "report", "--date", "2024-09-30",
                                  "--by", "province", "--format", "json",
                                  "--server", ready["listen"], "--token", token],
                                 capture_output=True, text=True, timeout=60, check=True).stdout
            failures += check_shanghai(json.loads(out)["rows"])
        finally:
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGTERM)
                    for _ in range(200):
                        os.kill(pid, 0)
                        time.sleep(0.05)
                except ProcessLookupError:
                    pass
        # The stopped server's data verifies clean.
        verify = subprocess.run([os.path.join(build, "server/loanledgerd"), "--verify", "--data",
                                 os.path.join(home, "data"), "--tokens", os.path.join(home, "tokens")],
                                capture_output=True, text=True, timeout=300)
        if verify.returncode != 0:
            failures.append(f"loanledgerd --verify exited {verify.returncode}: {verify.stdout}{verify.stderr}")
    for f in failures:
        print("FAIL:", f)
    print(f"quickstart e2e: {'FAILED' if failures else 'passed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
