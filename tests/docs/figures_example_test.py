#!/usr/bin/env python3
"""The worked example of docs/figures.md, run for real.

Reads docs/figures.md: the CSV code block (must equal
docs/examples/figures-example.csv), the expected `submit` summary lines, the
`report` and `series` command lines and the tables marked
`<!-- figures-example:report -->` and `<!-- figures-example:series -->`.
Starts loanledgerd on 127.0.0.1 port 0 (the bound port read from its ready
file: tests/support/ll_server.py),
submits the file twice through the CLI, runs `report` and `series` with
`--format json` and compares every number with the tables (balances and
counts exactly, growth rates within 1e-9, null as null). The server is
stopped by its PID. So the page and the program cannot drift apart.

usage: figures_example_test.py BUILD_DIR
"""
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
from ll_server import ServerError, start_loanledgerd  # noqa: E402

PAGE = os.path.join(ROOT, "docs", "figures.md")
CSV = os.path.join(ROOT, "docs", "examples", "figures-example.csv")
START_TIMEOUT_S = 20
COMMAND_TIMEOUT_S = 60


def code_blocks(text):
    """(info string, body) of every fenced code block."""
    return re.findall(r"^```([^\n]*)\n(.*?)^```$", text, flags=re.S | re.M)


def marked_table(text, marker):
    """The Markdown table right after `<!-- marker -->`: header names and rows of cells."""
    at = text.find(f"<!-- {marker} -->")
    if at < 0:
        raise ValueError(f"marker {marker} not found in {PAGE}")
    lines = text[at:].splitlines()[1:]
    table = []
    for line in lines:
        if not line.startswith("|"):
            break
        table.append([c.strip() for c in line.strip().strip("|").split("|")])
    if len(table) < 3:
        raise ValueError(f"no table after marker {marker}")
    return table[0], table[2:]  # skip the --- line


def cell_value(text):
    """A table cell as JSON would have it: null, an int (thousands separators allowed), a float."""
    if text == "null":
        return None
    plain = text.replace(",", "")
    if re.fullmatch(r"-?\d+", plain):
        return int(plain)
    if re.fullmatch(r"-?\d+\.\d+", plain):
        return float(plain)
    return text


def command_args(text, subcommand):
    """Arguments after `loanledger SUBCOMMAND` in the page's sh blocks."""
    for info, body in code_blocks(text):
        for line in body.splitlines():
            if line.startswith(f"loanledger {subcommand} "):
                return shlex.split(line)[1:]
    raise ValueError(f"no `loanledger {subcommand}` command line in {PAGE}")


def compare(what, want, got, failures):
    if isinstance(want, float) or isinstance(got, float):
        ok = want is not None and got is not None and abs(float(want) - float(got)) < 1e-9
    else:
        ok = want == got
    if not ok:
        failures.append(f"{what}: page says {want!r}, loanledger says {got!r}")


def start_server(build, work):
    tok = subprocess.run([os.path.join(build, "client/loanledger"), "token", "new", "--role",
                          "institution", "--institution", "B0001"],
                         capture_output=True, text=True, check=True, timeout=COMMAND_TIMEOUT_S)
    token, line = tok.stdout.splitlines()[:2]
    with open(f"{work}/tokens", "w") as f:
        f.write(line + "\n")
    server = start_loanledgerd(build, f"{work}/data", f"{work}/tokens", f"{work}/server.log",
                               timeout_s=START_TIMEOUT_S)
    return server, token


def main():
    build = os.path.abspath(sys.argv[1])
    ll = os.path.join(build, "client/loanledger")
    text = open(PAGE, encoding="utf-8").read()
    failures = []

    csv_blocks = [body for info, body in code_blocks(text) if info.strip() == "csv"]
    if len(csv_blocks) != 1:
        print(f"FAIL: expected one csv block in {PAGE}, found {len(csv_blocks)}")
        return 1
    if csv_blocks[0] != open(CSV, encoding="utf-8").read():
        failures.append("the csv block of docs/figures.md differs from docs/examples/figures-example.csv")
    summaries = [body.strip() for info, body in code_blocks(text) if body.startswith("applied=")]
    if len(summaries) != 2:
        print(f"FAIL: expected two `applied=...` blocks (first and second submit), found {len(summaries)}")
        return 1
    report_args = command_args(text, "report")
    series_args = command_args(text, "series")
    report_head, report_rows = marked_table(text, "figures-example:report")
    series_head, series_rows = marked_table(text, "figures-example:series")

    server = None
    with tempfile.TemporaryDirectory(prefix="loanledger-figures-") as work:
        try:
            try:
                server, token = start_server(build, work)
            except ServerError as e:
                print(f"FAIL: {e}")
                return 1
            conn = ["--server", server.address("listen"), "--token", token]
            for i, want in enumerate(summaries):
                sub = subprocess.run([ll, "submit", CSV] + conn, capture_output=True, text=True,
                                     timeout=COMMAND_TIMEOUT_S)
                got = sub.stdout.strip().splitlines()[-1] if sub.stdout.strip() else ""
                if sub.returncode != 0:
                    failures.append(f"submit {i + 1} exited {sub.returncode}: {sub.stderr}")
                compare(f"submit {i + 1} summary", want, got, failures)

            rep = subprocess.run([ll] + report_args + conn, capture_output=True, text=True,
                                 timeout=COMMAND_TIMEOUT_S)
            if rep.returncode != 0:
                failures.append(f"report exited {rep.returncode}: {rep.stderr}")
            else:
                rows = json.loads(rep.stdout)["rows"]
                compare("report row count", len(report_rows), len(rows), failures)
                for want_row, got_row in zip(report_rows, rows):
                    name = want_row[0]
                    compare(f"report row {name}: category", name, got_row.get("category"), failures)
                    compare(f"report row {name}: group", None, got_row.get("group"), failures)
                    for key, cell in zip(report_head[1:], want_row[1:]):
                        compare(f"report {name} {key}", cell_value(cell), got_row.get(key), failures)

            ser = subprocess.run([ll] + series_args + conn, capture_output=True, text=True,
                                 timeout=COMMAND_TIMEOUT_S)
            if ser.returncode != 0:
                failures.append(f"series exited {ser.returncode}: {ser.stderr}")
            else:
                points = json.loads(ser.stdout)["points"]
                compare("series point count", len(series_rows), len(points), failures)
                for want_row, point in zip(series_rows, points):
                    for key, cell in zip(series_head, want_row):
                        compare(f"series {want_row[0]} {key}", cell_value(cell), point.get(key),
                                failures)
        finally:
            if server is not None:
                server.stop(timeout_s=30)
    for f in failures:
        print("FAIL:", f)
    checked = len(report_rows) * len(report_head) + len(series_rows) * len(series_head)
    print(f"figures.md worked example: {'FAILED' if failures else 'passed'} "
          f"({len(report_rows)} report rows, {len(series_rows)} series points, ~{checked} values)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
