#!/usr/bin/env python3
"""Runs the real Prometheus on deploy/prometheus/ against a metrics endpoint and
runs every dashboard query on it.

  python3 tests/deploy/prometheus_smoke.py [--prometheus PATH] [--target HOST:PORT]

Without --target it serves a fake loanledgerd exposition built from
deploy/metrics.txt on an ephemeral port; with --target (a running
loanledgerd's --metrics-listen address) it scrapes that instead. Prometheus
gets a copy of prometheus.yml with the loanledger target and a 1 s
scrape/evaluation interval swapped in, and alerts.yml beside it; it listens
on a port it binds itself (port 0, tests/support/ll_server.py).

It passes when Prometheus starts with the configuration, the loanledger
target is up, every alert rule has been evaluated with health "ok", and every
dashboard query (instant, and range for range panels) runs without error.
Queries that return no data are listed (ALERTS needs a firing alert), not
failed. Prometheus runs in a temporary directory
and is stopped by its PID. Standard library only.
"""
from __future__ import annotations

import argparse
import http.server
import json
import re
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests/support"))
import check_dashboards  # noqa: E402
from ll_server import ServerError, start_prometheus  # noqa: E402

STARTUP_S_MAX = 30     # Prometheus ready and target scraped
RULES_S_MAX = 30       # every rule evaluated at least once
# Sample values for the dashboards' variables.
VARIABLES = {"instance": ".*", "province": ".*", "category": "TOTAL",
             "__rate_interval": "1m", "__interval": "1s", "__range": "1m"}
LABEL_VALUES = {  # label sets a fake loanledgerd exports for labelled families
    "loanledger_events_rejected_total": [{"reason": "SEQ_GAP"}, {"reason": "OVERDRAW"}],
    "loanledger_batches_total": [{"result": r} for r in ("applied", "rejected", "failed")],
    "loanledger_query_seconds": [{"kind": k} for k in ("report", "series", "loan")],
    "loanledger_category_balance_yuan": [{"category": c, "province": p}
                                         for c in ("TOTAL", "GREEN") for p in ("31", "44")],
    "loanledger_category_loans": [{"category": c, "province": p}
                                  for c in ("TOTAL", "GREEN") for p in ("31", "44")],
    "loanledger_build_info": [{"version": "0.0.0-smoke"}],
}
# The report gauges (issue 20): national by category, and by category and province.
for _name in check_dashboards.read_metrics_txt(ROOT / "deploy/metrics.txt"):
    if _name.startswith("loanledger_report_province_"):
        LABEL_VALUES[_name] = [{"category": c, "province": p} for c in ("TOTAL", "GREEN") for p in ("31", "44")]
    elif _name.startswith("loanledger_report_") and _name != "loanledger_report_date_timestamp_seconds":
        LABEL_VALUES[_name] = [{"category": c} for c in ("TOTAL", "GREEN")]


def fake_exposition(started: float) -> str:
    """A loanledgerd-like exposition whose counters grow with time."""
    expected = check_dashboards.read_metrics_txt(ROOT / "deploy/metrics.txt")
    t = time.monotonic() - started
    out = []
    for name, kind in expected.items():
        out.append(f"# HELP {name} fake")
        out.append(f"# TYPE {name} {kind}")
        for labels in LABEL_VALUES.get(name, [{}]):
            lab = ",".join(f'{k}="{v}"' for k, v in labels.items())
            if kind == "histogram":
                n = int(10 * t)
                for le, share in (("0.001", 0.5), ("0.01", 0.9), ("1", 0.99), ("+Inf", 1.0)):
                    out.append(f'{name}_bucket{{{lab + "," if lab else ""}le="{le}"}} {int(n * share)}')
                out.append(f"{name}_sum{{{lab}}} {n * 0.003}")
                out.append(f"{name}_count{{{lab}}} {n}")
            elif kind == "counter":
                out.append(f"{name}{{{lab}}} {int(100 * t)}")
            else:
                value = {"loanledger_data_disk_size_bytes": 1e11, "loanledger_data_disk_free_bytes": 6e10,
                         "loanledger_rocksdb_write_stall": 0, "loanledger_build_info": 1}.get(name, 1000 + t)
                out.append(f"{name}{{{lab}}} {value}")
    return "\n".join(out) + "\n"


def serve_fake() -> tuple[http.server.HTTPServer, str]:
    started = time.monotonic()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = fake_exposition(started).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"127.0.0.1:{httpd.server_address[1]}"


def api(base: str, path: str, **params) -> dict:
    url = f"{base}{path}?{urllib.parse.urlencode(params)}" if params else base + path
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as e:  # 400/422 carry the PromQL error as JSON
        body = e.read()
        try:
            return json.loads(body)
        except ValueError:
            # While Prometheus starts it answers 503 with plain text: not ready yet.
            return {"status": "error", "error": f"HTTP {e.code}: {body[:200]!r}"}


def wait_for(what: str, seconds: float, probe):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            last = probe()
            if last is True:
                return
        except OSError as e:
            last = e
        time.sleep(0.5)
    raise TimeoutError(f"{what}: not within {seconds:.0f} s (last: {last})")


def substitute(expr: str) -> str:
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", lambda m: VARIABLES.get(m.group(1) or m.group(2), ".*"), expr)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prometheus", default=shutil.which("prometheus") or "prometheus")
    ap.add_argument("--target", help="HOST:PORT of a running loanledgerd's metrics (default: a fake)")
    args = ap.parse_args(argv)

    fake = None
    target = args.target
    if not target:
        fake, target = serve_fake()
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="prom-smoke-") as tmp:
        config = (ROOT / "deploy/prometheus/prometheus.yml").read_text()
        config = config.replace('"127.0.0.1:9464"', json.dumps(target))
        config = re.sub(r"(scrape_interval|evaluation_interval): 15s", r"\1: 1s", config)
        config = config.replace("scrape_timeout: 10s", "scrape_timeout: 1s")
        (Path(tmp) / "prometheus.yml").write_text(config)
        shutil.copy(ROOT / "deploy/prometheus/alerts.yml", Path(tmp) / "alerts.yml")
        # The `prometheus` self-scrape job keeps its target (127.0.0.1:9090): our port is
        # known only once Prometheus has bound it, and nothing here checks that job.
        try:
            prom = start_prometheus(f"{tmp}/prometheus.yml", f"{tmp}/data", f"{tmp}/prometheus.log",
                                    args.prometheus)
        except (OSError, ServerError) as e:
            print(f"FAIL: cannot start {args.prometheus}: {e}", file=sys.stderr)
            if fake:
                fake.shutdown()
            return 1
        base = prom.base_url
        try:
            def target_up():
                r = api(base, "/api/v1/query", query='up{job="loanledger"}')
                res = r.get("data", {}).get("result", [])
                return True if res and res[0]["value"][1] == "1" else res
            wait_for("loanledger target up", STARTUP_S_MAX, target_up)

            def rules_ok():
                groups = api(base, "/api/v1/rules").get("data", {}).get("groups", [])
                rules = [r for g in groups for r in g["rules"]]
                pending = [r["name"] for r in rules if r.get("health") != "ok"]
                return True if rules and not pending else pending
            wait_for("every rule evaluated with health ok", RULES_S_MAX, rules_ok)
            time.sleep(2)  # a few samples for rate()
            empty = []
            now = time.time()
            for path in sorted((ROOT / "deploy/grafana/dashboards").glob("*.json")):
                dash = json.loads(path.read_text())
                for panel in check_dashboards.walk_panels(dash["panels"]):
                    for t in panel.get("targets", []):
                        expr = substitute(t.get("expr", ""))
                        where = f"{path.name}: {panel.get('title')!r} {t.get('refId')}"
                        r = api(base, "/api/v1/query", query=expr, time=now)
                        if r.get("status") != "success":
                            errors.append(f"{where}: {r.get('error')}: {expr}")
                            continue
                        if not r["data"]["result"]:
                            empty.append(where)
                        if t.get("range", True):
                            r = api(base, "/api/v1/query_range", query=expr, start=now - 30, end=now, step=1)
                            if r.get("status") != "success":
                                errors.append(f"{where} (range): {r.get('error')}: {expr}")
            groups = api(base, "/api/v1/rules").get("data", {}).get("groups", [])
            n_rules = sum(len(g["rules"]) for g in groups)
            print(f"Prometheus {base} scraped {target}; {n_rules} rules healthy")
            if empty:
                print("queries without data (expected for YoY, ALERTS, alert-only series):\n  " + "\n  ".join(empty))
        except TimeoutError as e:
            errors.append(str(e))
        finally:
            prom.stop(timeout_s=10)
            if fake:
                fake.shutdown()
            if errors:
                print("--- prometheus log (tail)\n" + "".join((Path(tmp) / "prometheus.log").read_text().splitlines(True)[-20:]),
                      file=sys.stderr)
    for e in errors:
        print("FAIL: " + e, file=sys.stderr)
    if not errors:
        print("OK")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
