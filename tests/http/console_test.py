#!/usr/bin/env python3
"""The regulator console (GET /, docs/http.md) in Debian's headless chromium.

Loads the page with the token in the URL fragment (never sent to the
server), lets chromium run its fetches (--virtual-time-budget), dumps the
DOM and compares every table with what the API returns for the same token:
the report (categories x balance, loans, YoY, YTD, flows, with the published
figures of docs/domain.md beside it for 2024-09-30), the same by province with names
(balance, loans, YoY, YTD and the three flows),
by institution, and the series behind the SVG chart. Amounts are compared
exactly (data-fen attributes and the yuan text, including a balance above
2^53). An institution's token shows that institution only; a wrong token
shows the API's error. The page references nothing outside the server.
usage: console_test.py BUILD_DIR [CHROMIUM]
"""
import html.parser
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("FAIL:", what)


def yuan(fen):
    """Fen as yuan with thousands separators and two decimals, exactly (as the CLI's FormatYuan)."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole:,}.{cents:02d}"


def pct(v):
    return "–" if v is None else f"{v:.2f}"


class Tables(html.parser.HTMLParser):
    """Rows of the tables with an id: {table_id: [{"attrs": tr attrs, "cells": {field: (text, fen)}}]};
    also body attributes, the #error text and the number of SVG polyline points."""

    def __init__(self):
        super().__init__()
        self.tables, self.body, self.error, self.polyline_points = {}, {}, "", 0
        self.external = []
        self._table = self._row = self._cell = None
        self._in_error = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("script", "link", "img", "iframe") and (a.get("src") or a.get("href")):
            self.external.append((tag, a))
        if tag == "body":
            self.body = a
        elif tag == "table" and a.get("id"):
            self._table = self.tables.setdefault(a["id"], [])
        elif tag == "tr" and self._table is not None and a:
            self._row = {"attrs": a, "cells": {}}
            self._table.append(self._row)
        elif tag == "td" and self._row is not None:
            self._cell = [a.get("data-field"), "", a.get("data-fen")]
        elif tag == "div" and a.get("id") == "error":
            self._in_error = True
        elif tag == "polyline":
            self.polyline_points = len(a.get("points", "").split())

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self._row["cells"][self._cell[0]] = (self._cell[1], self._cell[2])
            self._cell = None
        elif tag == "tr":
            self._row = None
        elif tag == "table":
            self._table = None
        elif tag == "div":
            self._in_error = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data
        if self._in_error:
            self.error += data


def dump_dom(chromium, url):
    with tempfile.TemporaryDirectory(prefix="loanledger-chromium-") as profile:
        out = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
             f"--user-data-dir={profile}", "--virtual-time-budget=15000", "--dump-dom", url],
            capture_output=True, text=True, timeout=120)
    page = Tables()
    page.feed(out.stdout)
    return page


def api(server, path, token):
    req = urllib.request.Request(server.url + path, headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def money_matches(cells, row, field, where):
    text, fen = cells.get(field, (None, None))
    check(fen == str(row[field]), f"{where} {field}: data-fen {fen} != {row[field]}")
    check(text == yuan(row[field]), f"{where} {field}: {text!r} != {yuan(row[field])!r}")


def compare(server, chromium, who, date="2024-09-30", category="GREEN", start="2023-01-01", end="2024-09-30"):
    token = server.tokens[who]
    fragment = urllib.parse.urlencode({"token": token, "date": date, "category": category, "from": start, "to": end})
    page = dump_dom(chromium, f"{server.url}/#{fragment}")
    check(page.body.get("data-state") == "ready", f"{who}: page state {page.body.get('data-state')}: {page.error}")
    check(page.error.strip() == "", f"{who}: error shown: {page.error!r}")

    report = api(server, "/v1/report?date=" + date, token)
    check(report["rows"] and page.tables.get("province-table") and page.tables.get("series-table"),
          f"{who}: empty tables")
    rows = page.tables.get("report-table", [])
    check(len(rows) == len(report["rows"]), f"{who}: report rows {len(rows)} != {len(report['rows'])}")
    for tr, r in zip(rows, report["rows"]):
        cells, where = tr["cells"], f"{who} report {r['category']}"
        check(tr["attrs"].get("data-category") == r["category"], f"{where}: row order")
        for f in ("balance_fen", "ytd_increase_fen", "disbursed_ytd_fen", "repaid_ytd_fen", "written_off_ytd_fen"):
            money_matches(cells, r, f, where)
        check(cells["loan_count"][0] == str(r["loan_count"]), f"{where}: loans")
        check(cells["yoy_growth_pct"][0] == pct(r["yoy_growth_pct"]), f"{where}: yoy {cells['yoy_growth_pct'][0]}")
    published = {tr["attrs"]["data-category"]: tr["cells"] for tr in rows}
    if date == "2024-09-30" and "MANUFACTURING_MLT" in published:
        check(published["MANUFACTURING_MLT"]["published_balance"][0] == "13,880,000,000,000.00",
              f"{who}: published MANUFACTURING_MLT balance {published['MANUFACTURING_MLT']['published_balance']}")
        check(published["INCLUSIVE_SMALL_MICRO"]["published_yoy"][0] == "14.5", f"{who}: published yoy")

    by_province = api(server, f"/v1/report?date={date}&by=province&category={category}", token)
    rows = page.tables.get("province-table", [])
    check(len(rows) == len(by_province["rows"]), f"{who}: province rows {len(rows)} != {len(by_province['rows'])}")
    for tr, r in zip(rows, by_province["rows"]):
        cells, where = tr["cells"], f"{who} province {r['group']}"
        check(cells["group"][0] == r["group"] and cells["group_name"][0] == r["group_name"],
              f"{where}: {cells['group']} {cells['group_name']} vs {r['group']} {r['group_name']}")
        for f in ("balance_fen", "ytd_increase_fen", "disbursed_ytd_fen", "repaid_ytd_fen", "written_off_ytd_fen"):
            money_matches(cells, r, f, where)
        check(cells["loan_count"][0] == str(r["loan_count"]), f"{where}: loans")
        check(cells["yoy_growth_pct"][0] == pct(r["yoy_growth_pct"]), f"{where}: yoy {cells['yoy_growth_pct'][0]}")

    by_institution = api(server, f"/v1/report?date={date}&by=institution&category={category}", token)
    rows = page.tables.get("institution-table", [])
    shown = [tr["cells"]["group"][0] for tr in rows]
    check(shown == [r["group"] for r in by_institution["rows"]], f"{who}: institutions {shown}")
    for tr, r in zip(rows, by_institution["rows"]):
        money_matches(tr["cells"], r, "balance_fen", f"{who} institution {r['group']}")

    series = api(server, f"/v1/series?category={category}&from={start}&to={end}&step=month", token)
    rows = page.tables.get("series-table", [])
    check(len(rows) == len(series["points"]), f"{who}: series points {len(rows)} != {len(series['points'])}")
    for tr, p in zip(rows, series["points"]):
        check(tr["cells"]["date"][0] == p["date"], f"{who} series date")
        money_matches(tr["cells"], p, "balance_fen", f"{who} series {p['date']}")
    check(page.polyline_points == len(series["points"]), f"{who}: chart has {page.polyline_points} points")
    check(not page.external, f"{who}: external references {page.external}")
    return page, shown


def main():
    build = sys.argv[1]
    chromium = sys.argv[2] if len(sys.argv) > 2 else "chromium"
    server = harness.Server(build)
    try:
        page, institutions = compare(server, chromium, "regulator")
        check(institutions == ["B0001", "B0002"], f"regulator sees institutions {institutions}")
        green = {tr["attrs"].get("data-group"): tr["cells"] for tr in page.tables.get("province-table", [])}
        check(green.get("31", {}).get("balance_fen", (None,))[0] == "100,000,000,000,000.07",
              f"Shanghai GREEN above 2^53 shown exactly: {green.get('31')}")
        check(green.get("31", {}).get("group_name", (None,))[0] == "上海市", "province name shown")
        for who in ("B0001", "B0002"):
            _, institutions = compare(server, chromium, who, category="TOTAL")
            check(institutions == [who], f"{who} sees institutions {institutions}")
        _, institutions = compare(server, chromium, "regulator", date="2024-03-31", category="TOTAL",
                                  start="2024-01-01", end="2024-03-31")
        # A wrong token: the API's error on the page, nothing else.
        page = dump_dom(chromium, server.url + "/#token=wrong-token")
        check(page.body.get("data-state") == "error" and "UNAUTHENTICATED" in page.error,
              f"wrong token: {page.body} {page.error!r}")
        check(not page.tables.get("report-table"), "wrong token shows no figures")
        log = server.log_text()
        for who, token in server.tokens.items():
            check(token not in log, f"{who}'s token in the server log")
    finally:
        server.stop()
    print(f"console: {'FAILED' if FAILURES else 'passed'}")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
