#!/usr/bin/env python3
"""Checks that a running loanledgerd exports every metric family deploy/ needs.

  python3 tests/deploy/check_metrics_exported.py URL [--metrics FILE] [--wait SECONDS] [--cluster]

URL is the metrics endpoint, e.g. http://127.0.0.1:9464/metrics (loanledgerd
--metrics-listen). The expected families are deploy/metrics.txt: the required
families (docs/metrics.md) plus those the alert rules and dashboards add. For each one the
exposition must have a `# TYPE <name> <kind>` line of the kind metrics.txt
gives (`# kind:` headings). A counter also matches its OpenMetrics family name
(without `_total`). Unknown loanledger_ families are listed, not failed.

The families after the `# cluster mode only` line of metrics.txt are exported
only by a server in cluster mode (--nats): they are skipped (and said so)
unless --cluster is given. tests/cluster/cluster_faults_test.py checks a real
cluster node with --cluster.

prometheus-cpp prints no `# TYPE` line for a family without any series, so
labelled families (reason, result, kind, category/province) must have their
label values created at start-up to pass.

Exit status: 0 all present; 1 some missing or of the wrong kind (one line
each on stderr); 2 the endpoint could not be fetched (after --wait seconds of
retries) or bad usage. Standard library only.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

TYPE_RE = re.compile(r"^#\s+TYPE\s+([A-Za-z_:][A-Za-z0-9_:]*)\s+(\w+)\s*$")
FETCH_TIMEOUT_S = 10  # one scrape; Prometheus's own scrape_timeout is 10 s


CLUSTER_ONLY_RE = re.compile(r"^#\s*cluster mode only\s*$")


def read_expected(path: Path, cluster: bool = False) -> dict[str, str]:
    """deploy/metrics.txt -> {name: kind}; a `# kind: X` line sets the kind of the names below it.
    The names after a `# cluster mode only` line are included only when `cluster` is true."""
    return {name: kind for name, (kind, cluster_only) in read_sections(path).items()
            if cluster or not cluster_only}


def read_sections(path: Path) -> dict[str, tuple[str, bool]]:
    """deploy/metrics.txt -> {name: (kind, cluster_only)}."""
    expected: dict[str, tuple[str, bool]] = {}
    kind = ""
    cluster_only = False
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        m = re.match(r"#\s*kind:\s*(\w+)\s*$", line)
        if m:
            kind = m.group(1)
        elif CLUSTER_ONLY_RE.match(line):
            cluster_only = True
        elif line and not line.startswith("#"):
            expected[line] = (kind, cluster_only)
    return expected


def parse_types(exposition: str) -> dict[str, str]:
    """`# TYPE name kind` lines of a Prometheus / OpenMetrics text exposition -> {name: kind}."""
    types: dict[str, str] = {}
    for line in exposition.splitlines():
        m = TYPE_RE.match(line)
        if m:
            types[m.group(1)] = m.group(2)
    return types


def fetch(url: str, wait_s: float) -> str:
    """GETs url, retrying once a second for up to wait_s seconds; raises OSError at the end."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            req = urllib.request.Request(url, headers={"Accept": "text/plain;version=0.0.4"})
            with urllib.request.urlopen(req, timeout=FETCH_TIMEOUT_S) as resp:
                return resp.read().decode("utf-8", errors="replace")
        except (urllib.error.URLError, OSError) as e:
            if time.monotonic() >= deadline:
                raise OSError(f"cannot fetch {url}: {getattr(e, 'reason', e)}") from e
            time.sleep(1)


def compare(expected: dict[str, str], types: dict[str, str]) -> tuple[list[str], list[str]]:
    """Returns (problems, extra loanledger_ families)."""
    problems: list[str] = []
    matched: set[str] = set()
    for name, kind in sorted(expected.items()):
        got_name = name
        if name not in types and kind == "counter" and name.endswith("_total") and name[:-6] in types:
            got_name = name[:-6]  # OpenMetrics names the counter family without _total
        if got_name not in types:
            problems.append(f"missing: {name} ({kind or 'any kind'})")
            continue
        matched.add(got_name)
        if kind and types[got_name] != kind:
            problems.append(f"wrong kind: {name} is {types[got_name]}, expected {kind}")
    extra = sorted(n for n in types if n.startswith("loanledger_") and n not in matched)
    return problems, extra


def main(argv: list[str]) -> int:
    root = Path(__file__).resolve().parents[2]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url", help="metrics endpoint, e.g. http://127.0.0.1:9464/metrics")
    ap.add_argument("--metrics", type=Path, default=root / "deploy/metrics.txt",
                    help="expected families (default: deploy/metrics.txt)")
    ap.add_argument("--wait", type=float, default=0.0,
                    help="keep retrying the fetch for this many seconds (a server just started)")
    ap.add_argument("--cluster", action="store_true",
                    help="the server runs in cluster mode (--nats): also require the families after "
                         "metrics.txt's `# cluster mode only` line")
    args = ap.parse_args(argv)
    try:
        expected = read_expected(args.metrics, cluster=args.cluster)
        skipped = sorted(set(read_expected(args.metrics, cluster=True)) - set(expected))
    except OSError as e:
        print(f"check_metrics_exported: {e}", file=sys.stderr)
        return 2
    if not expected:
        print(f"check_metrics_exported: {args.metrics} lists no metric", file=sys.stderr)
        return 2
    try:
        exposition = fetch(args.url, args.wait)
    except OSError as e:
        print(f"check_metrics_exported: {e}", file=sys.stderr)
        return 2
    problems, extra = compare(expected, parse_types(exposition))
    if skipped:
        print(f"skipped {len(skipped)} cluster-mode-only families (no --cluster): " + ", ".join(skipped))
        extra = [n for n in extra if n not in skipped]
    if extra:
        print("exported but not in metrics.txt (fine): " + ", ".join(extra))
    for p in problems:
        print(f"check_metrics_exported: {p}", file=sys.stderr)
    if problems:
        print(f"check_metrics_exported: {len(problems)} of {len(expected)} families missing or wrong at {args.url}",
              file=sys.stderr)
        return 1
    print(f"OK: all {len(expected)} families of {args.metrics.name} exported at {args.url}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
