"""The regulatory dashboard's figures against `loanledger report` (issue 20),
for tests/e2e/prometheus_e2e_test.py.

What Prometheus scraped of the loanledger_report_* gauges must equal
`loanledger report --date D --format json` (national, and `--by province`)
for D = the latest business date the ledger holds, which the date gauge must
name: every measure of every row (yuan gauges equal fen / 100 as doubles, a
null growth is NaN; the text exposition carries 16 significant digits),
and every province the report does not list reads 0 (NaN
growth). Checked after the first load, then again after a late correction:
events dated before D (a new loan from last year, a repayment this year) that
change the balance a year earlier, the YTD figures and this year's balance,
but not D.

Standard library only.
"""
from __future__ import annotations

import datetime
import json
import math
import subprocess
import time
import urllib.parse
import urllib.request

# A new loan reported late, dated before the first load's latest business
# date (2024-03-02): disbursed in Jiangsu in 2023 (so a year earlier, and at
# the end of 2023, there was a balance), partly repaid in 2023 and in 2024.
LATE_ROWS = [
    "B0001,L4,1,2023-02-01,DISBURSE,100000000,ENTERPRISE,MEDIUM,C2710,320102,24,200000000,0,1,0,0,0",
    "B0001,L4,2,2023-12-20,REPAY,10000001,ENTERPRISE,MEDIUM,C2710,320102,24,200000000,0,1,0,0,0",
    "B0001,L4,3,2024-02-15,REPAY,333,ENTERPRISE,MEDIUM,C2710,320102,24,200000000,0,1,0,0,0",
]
LATEST_DATE = "2024-03-02"  # of prometheus_e2e_test.ROWS; LATE_ROWS keep it

# Gauge measure -> report JSON field (money fields in fen, shown in yuan).
MEASURES = {
    "balance_yuan": "balance_fen",
    "loans": "loan_count",
    "balance_year_ago_yuan": "balance_year_ago_fen",
    "yoy_growth_percent": "yoy_growth_pct",
    "ytd_increase_yuan": "ytd_increase_fen",
    "disbursed_ytd_yuan": "disbursed_ytd_fen",
    "repaid_ytd_yuan": "repaid_ytd_fen",
    "written_off_ytd_yuan": "written_off_ytd_fen",
}
WAIT_S = 60


def _prom_series(base: str) -> dict[tuple[str, str, str], float]:
    """Every loanledger_report_* series Prometheus holds now: (name, category, province) -> value."""
    expr = '{__name__=~"loanledger_report_.+", job="loanledger"}'
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            result = json.load(r).get("data", {}).get("result", [])
    except (OSError, ValueError):
        return {}
    out = {}
    for s in result:
        m = s["metric"]
        out[(m["__name__"], m.get("category", ""), m.get("province", ""))] = float(s["value"][1])
    return out


def _report(ll: str, server: str, token: str, date: str, by: str | None) -> dict:
    cmd = [ll, "report", "--date", date, "--format", "json", "--server", server, "--token", token]
    if by:
        cmd += ["--by", by]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if run.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:6])} exited {run.returncode}: {run.stderr}")
    return json.loads(run.stdout)


def _expected(row: dict, measure: str) -> float:
    v = row[MEASURES[measure]]
    if v is None:  # growth without a base
        return math.nan
    if measure.endswith("_yuan"):
        return v / 100  # int / int: the double nearest fen / 100, as the server computes it
    return float(v)


def _same(got: float | None, want: float) -> bool:
    """got == want as the exposition can carry it: prometheus-cpp writes 16
    significant digits (the growth percentages have 17), so `want` rounded to
    16 digits; money in this test has at most 15, so it is compared exactly."""
    if got is None:
        return False
    if math.isnan(want):
        return math.isnan(got)
    return got == float(f"{want:.16g}")


def _mismatches(series: dict, date: str, national: dict, by_province: dict) -> list[str]:
    bad = []
    want_ts = datetime.datetime.strptime(date, "%Y-%m-%d").replace(tzinfo=datetime.timezone.utc).timestamp()
    got_ts = series.get(("loanledger_report_date_timestamp_seconds", "", ""))
    if got_ts != want_ts:
        bad.append(f"loanledger_report_date_timestamp_seconds = {got_ts}, want {want_ts} ({date})")
    if national.get("date") != date or by_province.get("date") != date:
        bad.append(f"report dates {national.get('date')}, {by_province.get('date')}, want {date}")
    if not national.get("rows"):
        bad.append("the national report has no rows")
    for row in national.get("rows", []):
        for measure in MEASURES:
            key = (f"loanledger_report_{measure}", row["category"], "")
            want = _expected(row, measure)
            if not _same(series.get(key), want):
                bad.append(f"{key[0]}{{category={key[1]}}} = {series.get(key)}, report says {want}")
    listed = set()
    for row in by_province.get("rows", []):
        listed.add((row["category"], row["group"]))
        for measure in MEASURES:
            key = (f"loanledger_report_province_{measure}", row["category"], row["group"])
            want = _expected(row, measure)
            if not _same(series.get(key), want):
                bad.append(f"{key[0]}{{category={key[1]},province={key[2]}}} = {series.get(key)}, report says {want}")
    # Provinces the report leaves out have nothing.
    for (name, category, province), v in series.items():
        if not name.startswith("loanledger_report_province_") or (category, province) in listed:
            continue
        want = math.nan if name.endswith("yoy_growth_percent") else 0.0
        if not _same(v, want):
            bad.append(f"{name}{{category={category},province={province}}} = {v}, the report lists no such row")
    return bad


def _wait_equal(base: str, ll: str, server: str, token: str, date: str, log) -> tuple[list[str], dict]:
    """Polls until Prometheus's report gauges equal the report of `date`; returns (mismatches, national)."""
    deadline = time.time() + WAIT_S
    bad, national = ["nothing compared"], {}
    while time.time() < deadline:
        national = _report(ll, server, token, date, None)
        by_province = _report(ll, server, token, date, "province")
        bad = _mismatches(_prom_series(base), date, national, by_province)
        if not bad:
            n = len(national["rows"]) + len(by_province["rows"])
            log(f"ok       report gauges == `loanledger report --date {date}` ({n} rows x {len(MEASURES)} measures)")
            return [], national
        time.sleep(0.5)
    return bad[:20] + ([f"... {len(bad) - 20} more"] if len(bad) > 20 else []), national


def run(base: str, ll: str, server: str, regulator_token: str, bank_token: str, work: str, header: str,
        log=print) -> list[str]:
    """The checks of this module's docstring; returns failures. bank_token submits (institution B0001)."""
    failures = []
    bad, before = _wait_equal(base, ll, server, regulator_token, LATEST_DATE, log)
    failures += [f"after the load: {b}" for b in bad]
    with open(f"{work}/late.csv", "w") as f:
        f.write(header + "\n" + "\n".join(LATE_ROWS) + "\n")
    sub = subprocess.run([ll, "submit", f"{work}/late.csv", "--server", server, "--token", bank_token],
                         capture_output=True, text=True, timeout=60)
    if sub.returncode != 0:
        return failures + [f"submit of the late correction exited {sub.returncode}: {sub.stderr}"]
    bad, after = _wait_equal(base, ll, server, regulator_token, LATEST_DATE, log)
    failures += [f"after the late correction: {b}" for b in bad]
    # The correction must have changed what is compared (the year-earlier
    # balance and growth of TOTAL), or the second check proves nothing.
    total = [r for r in before.get("rows", []) if r["category"] == "TOTAL"]
    total_after = [r for r in after.get("rows", []) if r["category"] == "TOTAL"]
    if not total or not total_after:
        failures.append("no TOTAL row in the national report")
    else:
        b, a = total[0], total_after[0]
        log(f"TOTAL a year earlier {b['balance_year_ago_fen']} -> {a['balance_year_ago_fen']} fen, "
            f"growth {b['yoy_growth_pct']} -> {a['yoy_growth_pct']} %, YTD increase "
            f"{b['ytd_increase_fen']} -> {a['ytd_increase_fen']} fen")
        if b["balance_year_ago_fen"] == a["balance_year_ago_fen"] or a["yoy_growth_pct"] is None:
            failures.append("the late correction did not change TOTAL's balance a year earlier")
        if b["ytd_increase_fen"] == a["ytd_increase_fen"] or b["repaid_ytd_fen"] == a["repaid_ytd_fen"]:
            failures.append("the late correction did not change TOTAL's YTD figures")
    return failures
