#!/usr/bin/env python3
"""loanledgerd + Debian's real Prometheus with deploy/'s configuration
(issue: metrics ... item 3).

Starts loanledgerd on ports it binds itself (port 0, read from its ready
file: tests/support/ll_server.py), submits a small CSV through the CLI,
starts `prometheus` on port 0 with deploy/prometheus/prometheus.yml (the
target rewritten to loanledgerd's metrics address, 1 s scrape interval) and
alerts.yml, and polls Prometheus's HTTP API until `up{job="loanledger"} == 1`,
the category balance gauges carry the submitted balances (in yuan) for the
right category and province, and the applied-events counter equals the
events submitted. Then the loanledger_report_* gauges must equal
`loanledger report --format json` for the latest business date, national and
by province, after the load and again after a late correction dated in the
past (tests/e2e/report_gauges_e2e.py, issue 20). Both processes are stopped
by their PIDs.

usage: prometheus_e2e_test.py BUILD_DIR
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import report_gauges_e2e  # noqa: E402 (beside this file)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
from ll_server import ServerError, start_loanledgerd, start_prometheus  # noqa: E402

HEADER = ("institution_id,loan_id,seq,business_date,event,amount_fen,borrower_type,enterprise_size,"
          "industry_code,region_code,term_months,credit_line_fen,srdi,tech_enterprise,green,"
          "elderly_care,digital_economy")
ROWS = [  # Shanghai: 500,000.00 + 120,000.50 - 20,000.50 = 600,000.00 yuan; Guangdong: 75,000.25 yuan (green)
    "B0001,L1,1,2024-01-05,DISBURSE,50000000,ENTERPRISE,SMALL,C3911,310115,36,80000000,1,1,0,0,1",
    "B0001,L2,1,2024-02-01,DISBURSE,12000050,INDIVIDUAL_BUSINESS,NA,F5123,310104,12,500000,0,0,0,0,0",
    "B0001,L2,2,2024-03-01,REPAY,2000050,INDIVIDUAL_BUSINESS,NA,F5123,310104,12,500000,0,0,0,0,0",
    "B0001,L3,1,2024-03-02,DISBURSE,7500025,ENTERPRISE,LARGE,D4411,440305,60,9000000000,0,0,1,0,0",
]


def query(base, expr):
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.load(r).get("data", {}).get("result", [])
    except (OSError, ValueError):
        return []  # not up yet


def value(base, expr):
    res = query(base, expr)
    return float(res[0]["value"][1]) if res else None


def main():
    build = os.path.abspath(sys.argv[1])
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        print("FAIL: prometheus not installed (scripts/install-deps.sh installs it)")
        return 1
    ll = os.path.join(build, "client/loanledger")
    failures = []
    server = prom = None
    with tempfile.TemporaryDirectory(prefix="loanledger-prom-e2e-") as work:
        try:
            tok = subprocess.run([ll, "token", "new", "--role", "institution", "--institution", "B0001"],
                                 capture_output=True, text=True, check=True).stdout.splitlines()
            reg = subprocess.run([ll, "token", "new", "--role", "regulator"],
                                 capture_output=True, text=True, check=True).stdout.splitlines()
            with open(f"{work}/tokens", "w") as f:
                f.write(tok[1] + "\n" + reg[1] + "\n")
            with open(f"{work}/in.csv", "w") as f:
                f.write(HEADER + "\n" + "\n".join(ROWS) + "\n")
            try:
                server = start_loanledgerd(build, f"{work}/data", f"{work}/tokens", f"{work}/server.log")
            except ServerError as e:
                print(f"FAIL: {e}")
                return 1
            sub = subprocess.run([ll, "submit", f"{work}/in.csv", "--server", server.address("listen"),
                                  "--token", tok[0]], capture_output=True, text=True, timeout=60)
            if sub.returncode != 0:
                failures.append(f"submit exited {sub.returncode}: {sub.stderr}")

            config = open(f"{ROOT}/deploy/prometheus/prometheus.yml").read()
            if '"127.0.0.1:9464"' not in config:
                failures.append("deploy/prometheus/prometheus.yml no longer targets 127.0.0.1:9464")
            config = config.replace('"127.0.0.1:9464"', f'"{server.address("metrics")}"')
            config = re.sub(r"(scrape_interval|evaluation_interval): 15s", r"\1: 1s", config)
            config = config.replace("scrape_timeout: 10s", "scrape_timeout: 1s")
            open(f"{work}/prometheus.yml", "w").write(config)
            shutil.copy(f"{ROOT}/deploy/prometheus/alerts.yml", f"{work}/alerts.yml")
            prom = start_prometheus(f"{work}/prometheus.yml", f"{work}/tsdb", f"{work}/prom.log", prometheus)
            base = prom.base_url
            want = {
                'up{job="loanledger"}': 1.0,
                'loanledger_category_balance_yuan{category="TOTAL",province="31"}': 600000.00,
                'loanledger_category_balance_yuan{category="INCLUSIVE_SMALL_MICRO",province="31"}': 600000.00,
                'loanledger_category_balance_yuan{category="GREEN",province="44"}': 75000.25,
                'loanledger_category_loans{category="TOTAL",province="31"}': 2.0,
                'loanledger_events_applied_total': float(len(ROWS)),
            }
            got = {}
            deadline = time.time() + 60
            while time.time() < deadline:
                got = {expr: value(base, expr) for expr in want}
                if all(got[e] is not None and abs(got[e] - v) < 1e-6 for e, v in want.items()):
                    break
                time.sleep(0.5)
            for expr, v in want.items():
                status = "ok" if got.get(expr) is not None and abs(got[expr] - v) < 1e-6 else "MISMATCH"
                print(f"{status:8} {expr} = {got.get(expr)} (want {v})")
                if status != "ok":
                    failures.append(f"{expr} = {got.get(expr)}, want {v}")
            # Issue 20: the dashboard's figures equal `loanledger report`.
            failures += report_gauges_e2e.run(base, ll, server.address("listen"), reg[0], tok[0], work, HEADER)
        except ServerError as e:
            failures.append(str(e))
        finally:
            for p in (prom, server):
                if p is not None:
                    p.stop(timeout_s=30)
            if failures and os.path.exists(f"{work}/prom.log"):
                print(open(f"{work}/prom.log").read()[-3000:])
    for f in failures:
        print("FAIL:", f)
    print(f"prometheus e2e: {'FAILED' if failures else 'passed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
