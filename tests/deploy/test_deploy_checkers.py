#!/usr/bin/env python3
"""Self-tests of the deploy checkers: they pass on good input and fail, naming
the culprit, on bad input. Standard library only.

  python3 tests/deploy/test_deploy_checkers.py [-v]
"""
from __future__ import annotations

import contextlib
import http.server
import io
import json
import shutil
import socket
import sys
import tempfile
import threading
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import check_dashboards  # noqa: E402
import check_deploy_files  # noqa: E402
import check_metrics_exported  # noqa: E402


def run(main, argv):
    """Runs a checker's main(argv); returns (status, stdout + stderr)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        status = main(argv)
    return status, out.getvalue()


def exposition(expected: dict[str, str], drop=(), kinds=None, openmetrics=False) -> str:
    """A text exposition like prometheus-cpp's for the expected families."""
    kinds = kinds or {}
    lines = []
    for name, kind in expected.items():
        if name in drop:
            continue
        kind = kinds.get(name, kind)
        family = name[:-6] if openmetrics and kind == "counter" else name
        lines.append(f"# HELP {family} test")
        lines.append(f"# TYPE {family} {kind}")
        if kind == "histogram":
            lines += [f'{name}_bucket{{le="0.1"}} 1', f'{name}_bucket{{le="+Inf"}} 2', f"{name}_sum 0.3", f"{name}_count 2"]
        else:
            lines.append(f"{name} 1")
    lines.append("# TYPE process_open_fds gauge")
    lines.append("process_open_fds 7")
    return "\n".join(lines) + "\n"


class MetricsServer:
    """Serves one fixed body on 127.0.0.1:<ephemeral>/metrics."""

    def __init__(self, body: str):
        payload = body.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200 if self.path == "/metrics" else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.end_headers()
                self.wfile.write(payload if self.path == "/metrics" else b"")

            def log_message(self, *args):
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/metrics"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


class CheckMetricsExportedTest(unittest.TestCase):
    expected = check_metrics_exported.read_expected(ROOT / "deploy/metrics.txt")

    def check(self, body):
        with MetricsServer(body) as server:
            return run(check_metrics_exported.main, [server.url])

    def test_passes_when_every_family_is_exported(self):
        status, out = self.check(exposition(self.expected))
        self.assertEqual(status, 0, out)
        self.assertIn("OK", out)

    def test_metrics_txt_lists_kinds_for_every_family(self):
        self.assertGreaterEqual(len(self.expected), 21)
        for name, kind in self.expected.items():
            self.assertIn(kind, ("counter", "gauge", "histogram"), name)

    def test_fails_naming_a_missing_family(self):
        status, out = self.check(exposition(self.expected, drop={"loanledger_events_rejected_total",
                                                                 "loanledger_data_disk_free_bytes"}))
        self.assertEqual(status, 1, out)
        self.assertIn("missing: loanledger_events_rejected_total", out)
        self.assertIn("missing: loanledger_data_disk_free_bytes", out)
        self.assertNotIn("missing: loanledger_events_applied_total", out)

    def test_fails_on_a_family_of_the_wrong_kind(self):
        status, out = self.check(exposition(self.expected, kinds={"loanledger_ack_latency_seconds": "summary"}))
        self.assertEqual(status, 1, out)
        self.assertIn("wrong kind: loanledger_ack_latency_seconds is summary, expected histogram", out)

    def test_accepts_openmetrics_counter_family_names(self):
        status, out = self.check(exposition(self.expected, openmetrics=True))
        self.assertEqual(status, 0, out)

    def test_a_sample_without_its_type_line_does_not_count(self):
        body = exposition(self.expected).replace("# TYPE loanledger_build_info gauge\n", "")
        status, out = self.check(body)
        self.assertEqual(status, 1, out)
        self.assertIn("missing: loanledger_build_info", out)

    def test_cluster_mode_only_families_are_checked_only_with_cluster(self):
        everything = check_metrics_exported.read_expected(ROOT / "deploy/metrics.txt", cluster=True)
        cluster_only = sorted(set(everything) - set(self.expected))
        self.assertIn("loanledger_cluster_is_leader", cluster_only)
        self.assertNotIn("loanledger_events_applied_total", cluster_only)
        # A single node exports none of them: fine without --cluster, named as skipped.
        status, out = self.check(exposition(self.expected))
        self.assertEqual(status, 0, out)
        self.assertIn("skipped", out)
        with MetricsServer(exposition(self.expected)) as server:
            status, out = run(check_metrics_exported.main, [server.url, "--cluster"])
        self.assertEqual(status, 1, out)
        self.assertIn("missing: loanledger_cluster_is_leader", out)
        with MetricsServer(exposition(everything)) as server:
            status, out = run(check_metrics_exported.main, [server.url, "--cluster"])
        self.assertEqual(status, 0, out)

    def test_unreachable_endpoint_is_status_2(self):
        # A port bound here and not listening: connections are refused, and no other
        # process can take the port while we hold it.
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            status, out = run(check_metrics_exported.main, [f"http://127.0.0.1:{port}/metrics"])
        self.assertEqual(status, 2, out)
        self.assertIn("cannot fetch", out)


class CheckDashboardsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="deploy-check-"))
        self.deploy = self.tmp / "deploy"
        shutil.copytree(ROOT / "deploy", self.deploy)
        self.ops = self.deploy / "grafana/dashboards/operations.json"

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def check(self):
        return run(check_dashboards.main, ["--deploy", str(self.deploy), "--quiet"])

    def edit_ops(self, edit):
        dash = json.loads(self.ops.read_text())
        edit(dash)
        self.ops.write_text(json.dumps(dash))

    def first_panel(self, dash, type_="timeseries"):
        return next(p for p in check_dashboards.walk_panels(dash["panels"]) if p["type"] == type_)

    def test_passes_on_the_shipped_files(self):
        status, out = self.check()
        self.assertEqual(status, 0, out)

    def test_a_dashboard_that_does_not_parse_fails(self):
        self.ops.write_text("{ not json")
        status, out = self.check()
        self.assertEqual(status, 1, out)
        self.assertIn("operations.json: does not parse", out)

    def test_a_misspelled_metric_fails(self):
        def edit(dash):
            p = self.first_panel(dash)
            p["targets"][0]["expr"] = "rate(loanledger_events_aplied_total[5m])"
        self.edit_ops(edit)
        status, out = self.check()
        self.assertEqual(status, 1, out)
        self.assertIn("loanledger_events_aplied_total (used by grafana/dashboards/operations.json)", out)

    def test_a_panel_nested_in_a_collapsed_row_is_checked(self):
        def edit(dash):
            dash["panels"].append({"type": "row", "id": 900, "title": "collapsed", "collapsed": True,
                                   "gridPos": {"h": 1, "w": 24, "x": 0, "y": 200},
                                   "panels": [{"type": "timeseries", "id": 901, "title": "hidden",
                                               "gridPos": {"h": 8, "w": 12, "x": 0, "y": 201},
                                               "targets": [{"refId": "A", "expr": " "}]}]})
        self.edit_ops(edit)
        status, out = self.check()
        self.assertEqual(status, 1, out)
        self.assertIn("panel 901 'hidden': no datasource uid", out)
        self.assertIn("panel 901 'hidden': no target with a non-empty expr", out)

    def test_an_unknown_datasource_uid_fails(self):
        def edit(dash):
            self.first_panel(dash)["datasource"] = {"type": "prometheus", "uid": "someone-elses"}
        self.edit_ops(edit)
        status, out = self.check()
        self.assertEqual(status, 1, out)
        self.assertIn("'someone-elses' is neither a variable nor a provisioned uid", out)

    def edit_regulatory(self, edit):
        path = self.deploy / "grafana/dashboards/regulatory.json"
        dash = json.loads(path.read_text())
        edit(dash)
        path.write_text(json.dumps(dash, ensure_ascii=False))

    def panel_titled(self, dash, title):
        return next(p for p in check_dashboards.walk_panels(dash["panels"]) if p.get("title") == title)

    def test_the_regulatory_dashboard_may_not_use_offset(self):
        def edit(dash):
            p = self.panel_titled(dash, "TOTAL balance")
            p["targets"][0]["expr"] = ('loanledger_report_balance_yuan{category="TOTAL"} - '
                                       'loanledger_report_balance_yuan{category="TOTAL"} offset 1y')
        self.edit_regulatory(edit)
        status, out = self.check()
        self.assertEqual(status, 1, out)
        self.assertIn("'TOTAL balance' target A: uses offset or @", out)

    def test_the_regulatory_dashboard_may_not_use_at_modifiers(self):
        def edit(dash):
            p = self.panel_titled(dash, "TOTAL balance")
            p["targets"][0]["expr"] = 'loanledger_report_balance_yuan{category="TOTAL"} @ start()'
        self.edit_regulatory(edit)
        status, out = self.check()
        self.assertEqual(status, 1, out)
        self.assertIn("uses offset or @", out)

    def test_the_regulatory_dashboard_uses_only_the_report_gauges(self):
        def edit(dash):
            p = self.panel_titled(dash, "TOTAL balance")
            p["targets"][0]["expr"] = 'sum(loanledger_category_balance_yuan{category="TOTAL"})'
        self.edit_regulatory(edit)
        status, out = self.check()
        self.assertEqual(status, 1, out)
        self.assertIn("loanledger_category_balance_yuan is not a loanledger_report_* gauge", out)

    def test_the_regulatory_dashboard_shows_the_business_date(self):
        def edit(dash):
            dash["panels"] = [p for p in dash["panels"]
                              if "loanledger_report_date_timestamp_seconds" not in json.dumps(p.get("targets"))]
        self.edit_regulatory(edit)
        status, out = self.check()
        self.assertEqual(status, 1, out)
        self.assertIn("no panel shows the business date", out)

    def test_the_regulatory_dashboard_names_every_province(self):
        def edit(dash):
            p = self.panel_titled(dash, "Provinces: $category")
            for o in p["fieldConfig"]["overrides"]:
                for prop in o["properties"]:
                    if prop["id"] == "mappings":
                        for m in prop["value"]:
                            m.get("options", {}).pop("31", None)
        self.edit_regulatory(edit)
        status, out = self.check()
        self.assertEqual(status, 1, out)
        self.assertIn("'Provinces: $category' shows provinces without names for codes 31", out)

    def test_a_histogram_suffix_maps_to_its_family(self):
        known = {"loanledger_ack_latency_seconds", "loanledger_connections_total"}
        names = check_dashboards.metric_names(
            "sum(rate(loanledger_ack_latency_seconds_bucket[5m])) + loanledger_ack_latency_seconds_count"
            " + rate(loanledger_connections_total[1m]) + loanledger_ack_latency_seconds_sum", known)
        self.assertEqual(names, known)

    def test_metrics_txt_must_keep_every_spec_family(self):
        txt = self.deploy / "metrics.txt"
        txt.write_text(txt.read_text().replace("loanledger_inflight_batches\n", ""))
        status, out = self.check()
        self.assertEqual(status, 1, out)
        self.assertIn("required family loanledger_inflight_batches is missing", out)

    def test_an_alert_series_name_outside_metrics_txt_fails(self):
        t = self.deploy / "prometheus/alerts_test.yml"
        t.write_text(t.read_text().replace("loanledger_rocksdb_write_stall{", "loanledger_rocksdb_writes_stalled{"))
        status, out = self.check()
        self.assertEqual(status, 1, out)
        self.assertIn("loanledger_rocksdb_writes_stalled (used by prometheus/alerts_test.yml)", out)


class CheckDeployFilesTest(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="deploy-files-"))
        self.deploy = self.tmp / "deploy"
        shutil.copytree(ROOT / "deploy", self.deploy)
        shutil.copytree(ROOT / "scripts", self.tmp / "scripts")

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def check(self):
        return run(check_deploy_files.main, ["--deploy", str(self.deploy)])

    def replace(self, rel, old, new):
        path = self.deploy / rel
        text = path.read_text()
        self.assertIn(old, text)
        path.write_text(text.replace(old, new, 1))

    def test_passes_on_the_shipped_files(self):
        status, out = self.check()
        self.assertEqual(status, 0, out)

    def test_compose_prometheus_config_may_not_drift(self):
        self.replace("prometheus/prometheus-compose.yml", "scrape_interval: 15s", "scrape_interval: 60s")
        status, out = self.check()
        self.assertEqual(status, 1, out)
        self.assertIn("prometheus-compose.yml differs from prometheus.yml", out)

    def test_an_alert_without_a_firing_test_fails(self):
        self.replace("prometheus/alerts.yml", "alert: LoanledgerAuthFailuresHigh", "alert: LoanledgerAuthFailuresTooHigh")
        status, out = self.check()
        self.assertEqual(status, 1, out)
        self.assertIn("no test case where LoanledgerAuthFailuresTooHigh fires", out)
        self.assertIn("tests unknown alert LoanledgerAuthFailuresHigh", out)

    def test_an_alert_without_a_runbook_url_fails(self):
        self.replace("prometheus/alerts.yml", 'runbook_url: "deploy/README.md#loanledgerdown"\n', "")
        status, out = self.check()
        self.assertEqual(status, 1, out)
        self.assertIn("alert LoanledgerDown lacks runbook_url annotation", out)

    def test_a_runbook_url_to_a_missing_section_fails(self):
        self.replace("README.md", "### LoanledgerAuthFailuresHigh\n", "### Too many failed logins\n")
        status, out = self.check()
        self.assertEqual(status, 1, out)
        self.assertIn("runbook_url deploy/README.md#loanledgerauthfailureshigh names no section", out)

    def test_markdown_anchors_follow_github(self):
        anchors = check_deploy_files.markdown_anchors(
            "## Bringing it up on a host: systemd + Debian's prometheus\n### Adding a replica\n"
            "```sh\n# not a heading\n```\n## Adding a replica\n")
        self.assertEqual(anchors, {"bringing-it-up-on-a-host-systemd--debians-prometheus", "adding-a-replica",
                                   "adding-a-replica-1"})

    def test_an_alert_without_severity_fails(self):
        self.replace("prometheus/alerts.yml", "severity: critical", "priority: high")
        status, out = self.check()
        self.assertEqual(status, 1, out)
        self.assertIn("alert LoanledgerDown lacks severity label", out)

    def test_the_unit_must_keep_its_hardening(self):
        self.replace("systemd/loanledgerd.service", "NoNewPrivileges=yes\n", "")
        self.replace("systemd/loanledgerd.service", "ReadWritePaths=/var/lib/loanledger", "ReadWritePaths=/srv")
        status, out = self.check()
        self.assertEqual(status, 1, out)
        self.assertIn("loanledgerd.service: no NoNewPrivileges=", out)
        self.assertIn("the --data directory is not in ReadWritePaths", out)

    def test_the_image_must_not_run_as_root(self):
        self.replace("Dockerfile", "USER loanledger:loanledger", "USER root")
        status, out = self.check()
        self.assertEqual(status, 1, out)
        self.assertIn("does not switch to a non-root USER", out)

    def test_a_compose_mount_of_a_missing_file_fails(self):
        self.replace("docker-compose.yml", "./prometheus/alerts.yml:", "./prometheus/alert.yml:")
        status, out = self.check()
        self.assertEqual(status, 1, out)
        self.assertIn("./prometheus/alert.yml does not exist", out)

    def test_images_from_outside_must_be_pinned(self):
        self.replace("Dockerfile", "# loanledgerd container image", "# syntax=docker/dockerfile:1\n# loanledgerd container image")
        self.replace("cluster/Dockerfile.nats", "FROM debian:bookworm-slim@sha256:", "FROM debian:bookworm-slim # @sha256:")
        self.replace("docker-compose.yml", "image: grafana/grafana:10.4.2@sha256:", "image: grafana/grafana:10.4.2 # @sha256:")
        status, out = self.check()
        self.assertEqual(status, 1, out)
        self.assertIn("Dockerfile: a `# syntax=` line", out)
        self.assertIn("cluster/Dockerfile.nats: FROM debian:bookworm-slim is not pinned", out)
        self.assertIn("docker-compose.yml: image grafana/grafana:10.4.2 is not pinned", out)

    def test_a_compose_file_may_not_have_a_top_level_name(self):
        self.replace("cluster/docker-compose.yml", "services:\n", "name: loanledger-cluster\n\nservices:\n")
        status, out = self.check()
        self.assertEqual(status, 1, out)
        self.assertIn("cluster/docker-compose.yml: top-level `name:`", out)


if __name__ == "__main__":
    unittest.main()
