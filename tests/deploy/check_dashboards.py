#!/usr/bin/env python3
"""Checks the Grafana dashboards and the metric names that deploy/ depends on.

  python3 tests/deploy/check_dashboards.py [--deploy DIR] [--promtool PATH]
                                           [--write-used FILE] [--quiet]

1. Every deploy/grafana/dashboards/*.json parses and looks like a Grafana
   dashboard (uid, title, schemaVersion >= 37, unique panel ids, gridPos).
   Every panel, including those nested in rows, has a Prometheus datasource
   (the ${DS_PROMETHEUS} variable or the provisioned uid) and at least one
   target with a non-empty expr.
2. It collects the loanledger_* metric names used by the dashboards' queries
   and variables, by the alert rules (deploy/prometheus/alerts.yml) and by the
   series of their unit tests (alerts_test.yml); a _bucket/_sum/_count
   suffix maps to the histogram's base name. It prints that set (and writes it
   with --write-used).
3. Every used name must be listed in deploy/metrics.txt, the list the server
   must export, and metrics.txt must contain every required family.
4. The regulatory dashboard (uid loanledger-regulatory) shows the ledger's
   own figures by business date (issue 20): its queries use only the
   loanledger_report_* gauges (and loanledger_build_info for the instance
   variable), never `offset` or an `@` modifier (wall-clock arithmetic over
   scrapes); one panel shows loanledger_report_date_timestamp_seconds, and
   every panel querying a loanledger_report_province_* family names every
   province code (a value mapping or a displayName override per code).
5. With --promtool, every dashboard query is parsed by Prometheus itself:
   the queries (Grafana variables replaced by sample values) become recording
   rules in a temporary file that `promtool check rules` must accept.

Exit status 0 when everything holds; 1 with one line per problem otherwise.
Standard library only.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

# The required families, "at least these" (docs/metrics.md; loanledger_rocksdb_* spelled
# out as its five gauges). deploy/metrics.txt must contain them all.
REQUIRED_FAMILIES = {
    "loanledger_events_applied_total",
    "loanledger_events_duplicate_total",
    "loanledger_events_rejected_total",
    "loanledger_batches_total",
    "loanledger_auth_failures_total",
    "loanledger_connections_total",
    "loanledger_connections_active",
    "loanledger_inflight_batches",
    "loanledger_batch_apply_seconds",
    "loanledger_ack_latency_seconds",
    "loanledger_query_seconds",
    "loanledger_category_balance_yuan",
    "loanledger_category_loans",
    "loanledger_rocksdb_memtable_bytes",
    "loanledger_rocksdb_pending_compaction_bytes",
    "loanledger_rocksdb_live_sst_bytes",
    "loanledger_rocksdb_block_cache_usage_bytes",
    "loanledger_rocksdb_write_stall",
    "loanledger_build_info",
}

# loanledger_* and the standard process_* families (server/process_metrics.h).
METRIC_RE = re.compile(r"(?<![A-Za-z0-9_:])(?:loanledger|process)_[A-Za-z0-9_:]*")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
SCHEMA_VERSION_MIN = 37
# Sample values for Grafana's built-in variables when promtool parses a query.
GRAFANA_BUILTINS = {
    "__rate_interval": "5m",
    "__interval": "1m",
    "__range": "1h",
    "__range_s": "3600",
    "__interval_ms": "60000",
}
REGULATORY_UID = "loanledger-regulatory"
REGULATORY_ALLOWED_RE = re.compile(r"loanledger_report_[a-z0-9_]+|loanledger_build_info")
OFFSET_RE = re.compile(r"(?<![A-Za-z0-9_:])offset(?![A-Za-z0-9_:])|@\s*(?:start|end|[0-9])")
# GB/T 2260 province-level codes (schema/category.cc kProvinceCodes).
PROVINCE_CODES = ("11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 "
                  "50 51 52 53 54 61 62 63 64 65").split()
LABEL_VALUES_RE = re.compile(r"^\s*label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$", re.S)


def read_metrics_txt(path: Path) -> dict[str, str]:
    """deploy/metrics.txt -> {name: kind}; `# kind: X` lines set the kind."""
    names: dict[str, str] = {}
    kind = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        m = re.match(r"#\s*kind:\s*(\w+)\s*$", line)
        if m:
            kind = m.group(1)
            continue
        if not line or line.startswith("#"):
            continue
        names[line] = kind
    return names


def base_name(name: str, known: set[str]) -> str:
    """loanledger_x_seconds_bucket -> loanledger_x_seconds, unless the raw name is itself known."""
    if name in known:
        return name
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def metric_names(text: str, known: set[str]) -> set[str]:
    return {base_name(m, known) for m in METRIC_RE.findall(text)}


def walk_panels(panels):
    """Yields every panel, descending into rows (expanded rows list their panels
    at top level; collapsed rows keep them in row["panels"])."""
    for p in panels:
        yield p
        yield from walk_panels(p.get("panels") or [])


def datasource_ok(ds, variables: dict[str, str], provisioned_uids: set[str]) -> str | None:
    """None if ds is a usable Prometheus datasource reference, else why not."""
    if isinstance(ds, str):  # legacy: a datasource name or a variable
        ds = {"uid": ds}
    if not isinstance(ds, dict) or not ds.get("uid"):
        return "no datasource uid"
    if ds.get("type", "prometheus") != "prometheus":
        return f"datasource type {ds.get('type')!r} is not prometheus"
    uid = ds["uid"]
    m = re.fullmatch(r"\$\{?(\w+)\}?", uid)
    if m:
        if variables.get(m.group(1)) != "datasource":
            return f"datasource {uid} is not a datasource variable of this dashboard"
        return None
    if uid not in provisioned_uids:
        return f"datasource uid {uid!r} is neither a variable nor a provisioned uid {sorted(provisioned_uids)}"
    return None


def variable_query(var: dict) -> str:
    q = var.get("query", "")
    if isinstance(q, dict):
        q = q.get("query", "")
    return q or ""


def check_dashboard(path: Path, provisioned_uids: set[str],
                    errors: list[str]) -> tuple[str | None, list[tuple[str, str]]]:
    """Checks one dashboard file; returns its uid and its PromQL expressions as (where, expr)."""
    where = path.name
    try:
        dash = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        errors.append(f"{where}: does not parse: {e}")
        return None, []
    exprs: list[tuple[str, str]] = []
    for key in ("uid", "title"):
        if not isinstance(dash.get(key), str) or not dash[key]:
            errors.append(f"{where}: missing {key}")
    if not isinstance(dash.get("schemaVersion"), int) or dash["schemaVersion"] < SCHEMA_VERSION_MIN:
        errors.append(f"{where}: schemaVersion {dash.get('schemaVersion')} < {SCHEMA_VERSION_MIN}")
    variables = {}
    for var in dash.get("templating", {}).get("list", []):
        variables[var.get("name")] = var.get("type")
    for var in dash.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        vwhere = f"{where}: variable {var.get('name')}"
        why = datasource_ok(var.get("datasource"), variables, provisioned_uids)
        if why:
            errors.append(f"{vwhere}: {why}")
        q = variable_query(var)
        m = LABEL_VALUES_RE.match(q)
        if not m:
            errors.append(f"{vwhere}: query {q!r} is not label_values(selector, label)")
        else:
            exprs.append((vwhere, m.group(1)))
    panels = dash.get("panels")
    if not isinstance(panels, list) or not panels:
        errors.append(f"{where}: no panels")
        return dash.get("uid"), exprs
    ids: set[int] = set()
    for p in walk_panels(panels):
        pwhere = f"{where}: panel {p.get('id')} {p.get('title')!r}"
        pid = p.get("id")
        if not isinstance(pid, int) or pid in ids:
            errors.append(f"{pwhere}: id missing or not unique")
        ids.add(pid)
        gp = p.get("gridPos") or {}
        if not all(isinstance(gp.get(k), int) for k in ("h", "w", "x", "y")) or gp.get("x", 0) + gp.get("w", 0) > 24:
            errors.append(f"{pwhere}: bad gridPos {gp}")
        if not p.get("title"):
            errors.append(f"{pwhere}: no title")
        if p.get("type") == "row":
            continue
        why = datasource_ok(p.get("datasource"), variables, provisioned_uids)
        if why:
            errors.append(f"{pwhere}: {why}")
        targets = p.get("targets") or []
        good = [t for t in targets if isinstance(t.get("expr"), str) and t["expr"].strip()]
        if not good:
            errors.append(f"{pwhere}: no target with a non-empty expr")
        for t in targets:
            if "datasource" in t:
                why = datasource_ok(t["datasource"], variables, provisioned_uids)
                if why:
                    errors.append(f"{pwhere}: target {t.get('refId')}: {why}")
            if not (isinstance(t.get("expr"), str) and t["expr"].strip()):
                errors.append(f"{pwhere}: target {t.get('refId')} has an empty expr")
        exprs.extend((f"{pwhere} target {t.get('refId')}", t["expr"]) for t in good)
    if dash.get("uid") == REGULATORY_UID:
        check_regulatory(dash, where, exprs, errors)
    return dash.get("uid"), exprs


def named_province_codes(panel: dict) -> set[str]:
    """Province codes the panel gives a name: value mappings (defaults or
    overrides) and displayName overrides matched by the code."""
    named: set[str] = set()
    fc = panel.get("fieldConfig") or {}
    mapping_lists = [(fc.get("defaults") or {}).get("mappings") or []]
    for o in fc.get("overrides") or []:
        for prop in o.get("properties") or []:
            if prop.get("id") == "mappings":
                mapping_lists.append(prop.get("value") or [])
            if prop.get("id") == "displayName" and prop.get("value"):
                opt = (o.get("matcher") or {}).get("options")
                if isinstance(opt, str) and opt in PROVINCE_CODES and prop["value"] != opt:
                    named.add(opt)
    for mappings in mapping_lists:
        for m in mappings:
            if m.get("type") != "value":
                continue
            for code, res in (m.get("options") or {}).items():
                if code in PROVINCE_CODES and (res or {}).get("text") not in (None, "", code):
                    named.add(code)
    return named


def check_regulatory(dash: dict, where: str, exprs: list[tuple[str, str]], errors: list[str]) -> None:
    """The regulatory dashboard shows the ledger's figures by business date (issue 20)."""
    for ewhere, e in exprs:
        if OFFSET_RE.search(e):
            errors.append(f"{ewhere}: uses offset or @ (wall-clock arithmetic over scrapes; "
                          f"use the loanledger_report_* gauges): {e}")
        for name in sorted(set(METRIC_RE.findall(e))):
            if not REGULATORY_ALLOWED_RE.fullmatch(name):
                errors.append(f"{ewhere}: {name} is not a loanledger_report_* gauge (the ledger's own figures)")
    if not any("loanledger_report_date_timestamp_seconds" in e for _, e in exprs):
        errors.append(f"{where}: no panel shows the business date (loanledger_report_date_timestamp_seconds)")
    for p in walk_panels(dash.get("panels") or []):
        text = " ".join(t.get("expr") or "" for t in p.get("targets") or [])
        if "loanledger_report_province_" not in text:
            continue
        missing = [c for c in PROVINCE_CODES if c not in named_province_codes(p)]
        if missing:
            errors.append(f"{where}: panel {p.get('id')} {p.get('title')!r} shows provinces without names "
                          f"for codes {', '.join(missing)} (a value mapping or displayName override per code)")


def provisioned_datasource_uids(deploy: Path) -> set[str]:
    path = deploy / "grafana/provisioning/datasources/prometheus.yml"
    if not path.exists():
        return set()
    return set(re.findall(r"^\s*uid:\s*['\"]?([\w-]+)", path.read_text(encoding="utf-8"), re.M))


def alert_rule_exprs(text: str) -> list[str]:
    """The `expr:` values of a Prometheus rule file, single-line or block (`|`)."""
    exprs: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)(?:-\s*)?expr:\s*(.*)$", lines[i])
        i += 1
        if not m:
            continue
        value = m.group(2).strip()
        if value in ("|", ">", "|-", ">-"):
            indent = len(m.group(1))
            block = []
            while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
                block.append(lines[i])
                i += 1
            exprs.append("\n".join(block))
        else:
            exprs.append(value.strip("'\""))
    return exprs


def test_series_names(text: str) -> list[str]:
    return [m.group(1) for m in re.finditer(r"^\s*-?\s*series:\s*['\"]?([A-Za-z_:][A-Za-z0-9_:]*)", text, re.M)]


def grafana_to_promql(expr: str) -> str:
    """Replaces Grafana variables by sample values so that Prometheus can parse the query."""
    def sub(m):
        return GRAFANA_BUILTINS.get(m.group(1) or m.group(2), "x")
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", sub, expr)


def promtool_parse(promtool: str, exprs: list[tuple[str, str]], errors: list[str]) -> None:
    """Has Prometheus parse every query by loading them as recording rules."""
    lines = ["groups:", "  - name: dashboard_queries", "    rules:"]
    for n, (_, e) in enumerate(exprs):
        lines.append(f"      - record: dashboard_query:{n}")
        lines.append("        expr: " + json.dumps(grafana_to_promql(e)))
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "dashboard_queries.yml"
        rules.write_text("\n".join(lines) + "\n", encoding="utf-8")
        try:
            run = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True)
        except OSError as e:
            errors.append(f"promtool: cannot run {promtool}: {e}")
            return
        if run.returncode != 0:
            out = run.stdout + run.stderr
            bad = sorted({int(n) for n in re.findall(r"dashboard_query:(\d+)", out)})
            if not bad:
                errors.append("promtool check rules failed on the dashboard queries:\n" + out)
            for n in bad:
                where, e = exprs[n]
                msg = re.findall(rf'"dashboard_query:{n}": (.*)', out)
                errors.append(f"{where}: promtool: {msg[0] if msg else 'rejected'}: {grafana_to_promql(e)}")


def main(argv: list[str]) -> int:
    root = Path(__file__).resolve().parents[2]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--deploy", type=Path, default=root / "deploy", help="the deploy/ directory")
    ap.add_argument("--promtool", help="promtool to parse every dashboard query with")
    ap.add_argument("--write-used", type=Path, help="write the used metric names here, one a line")
    ap.add_argument("--quiet", action="store_true", help="print only problems")
    args = ap.parse_args(argv)
    deploy: Path = args.deploy
    errors: list[str] = []

    metrics_txt = deploy / "metrics.txt"
    exported = read_metrics_txt(metrics_txt)
    known = set(exported)
    for name, kind in exported.items():
        if kind not in ("counter", "gauge", "histogram"):
            errors.append(f"metrics.txt: {name} has no `# kind:` (counter, gauge or histogram)")
        if not re.fullmatch(r"(loanledger|process)_[a-z0-9_]+", name):
            errors.append(f"metrics.txt: {name!r} is not a loanledger_ metric name")
        if kind == "counter" and not name.endswith("_total"):
            errors.append(f"metrics.txt: counter {name} does not end in _total")
    for name in sorted(REQUIRED_FAMILIES - known):
        errors.append(f"metrics.txt: required family {name} is missing")

    dash_dir = deploy / "grafana/dashboards"
    dash_files = sorted(dash_dir.glob("*.json"))
    if not dash_files:
        errors.append(f"{dash_dir}: no dashboards")
    uids = provisioned_datasource_uids(deploy)
    used: dict[str, set[str]] = {}  # name -> where

    def note(names, where):
        for n in names:
            used.setdefault(n, set()).add(where)

    dash_exprs: list[str] = []
    seen_uids: set[str] = set()
    for path in dash_files:
        uid, exprs = check_dashboard(path, uids, errors)
        if uid and uid in seen_uids:
            errors.append(f"{path.name}: dashboard uid {uid} used twice")
        seen_uids.add(uid)
        dash_exprs.extend(exprs)
        for _, e in exprs:
            note(metric_names(e, known), f"grafana/dashboards/{path.name}")

    alerts = deploy / "prometheus/alerts.yml"
    alert_exprs = alert_rule_exprs(alerts.read_text(encoding="utf-8"))
    if not alert_exprs:
        errors.append(f"{alerts}: no expr found")
    for e in alert_exprs:
        note(metric_names(e, known), "prometheus/alerts.yml")
    alerts_test = deploy / "prometheus/alerts_test.yml"
    for s in test_series_names(alerts_test.read_text(encoding="utf-8")):
        if s.startswith(("loanledger_", "process_")):
            note({base_name(s, known)}, "prometheus/alerts_test.yml")

    for name in sorted(set(used) - known):
        errors.append(f"{name} (used by {', '.join(sorted(used[name]))}) is not in deploy/metrics.txt")
    unused = sorted(known - set(used))

    if args.promtool:
        promtool_parse(args.promtool, dash_exprs, errors)

    if args.write_used:
        args.write_used.write_text("".join(n + "\n" for n in sorted(used)), encoding="utf-8")
    if not args.quiet:
        print(f"{len(dash_files)} dashboards, {len(dash_exprs)} dashboard queries, {len(alert_exprs)} alert expressions")
        print("metric families used by dashboards and alert rules:")
        for name in sorted(used):
            print(f"  {name}  ({', '.join(sorted(used[name]))})")
        if unused:
            print("in metrics.txt but used by no dashboard or rule: " + ", ".join(unused))
    for e in errors:
        print("FAIL: " + e, file=sys.stderr)
    if not errors and not args.quiet:
        print("OK")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
