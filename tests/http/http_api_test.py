#!/usr/bin/env python3
"""The HTTP read API end to end (docs/http.md), against a real loanledgerd.

- bodies equal the CLI's `--format json` for the same queries (regulator and
  institution tokens; report with and without by/categories, series, loan);
- roles: no token / unknown token 401, admin 403, another institution's loan
  403, an institution's report covers its own loans only;
- bad inputs: 400 with a message naming the problem; unknown path and
  unknown loan 404; every error body is {"error","message"};
- exactness: a balance above 2^53 arrives exactly;
- bounds: request head limit, connection cap (503), request timeout, keep-alive;
- the token never appears in the log; SIGTERM stops the server.
usage: http_api_test.py BUILD_DIR
"""
import http.client
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("FAIL:", what)


def get(server, path, token=None, headers=None, method="GET"):
    """(status, headers, body bytes) of one request on a fresh connection."""
    host, port = server.http.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    h = dict(headers or {})
    if token:
        h["Authorization"] = "Bearer " + token
    conn.request(method, path, headers=h)
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, dict(r.getheaders()), body


def error_of(status, body, expect_status, expect_code, what, fragment=None):
    check(status == expect_status, f"{what}: status {status}, expected {expect_status}: {body[:200]!r}")
    try:
        j = json.loads(body)
    except ValueError:
        check(False, f"{what}: body is not JSON: {body[:200]!r}")
        return
    check(sorted(j) == ["error", "message"], f"{what}: error body keys {sorted(j)}")
    check(j.get("error") == expect_code, f"{what}: error {j.get('error')}, expected {expect_code}")
    check(isinstance(j.get("message"), str) and j["message"], f"{what}: empty message")
    if fragment:
        check(fragment in j.get("message", ""), f"{what}: message {j.get('message')!r} lacks {fragment!r}")


def same_as_cli(server, who):
    queries = [
        ("/v1/report?date=2024-09-30", ["report", "--date", "2024-09-30"]),
        ("/v1/report?date=2024-09-30&by=province", ["report", "--date", "2024-09-30", "--by", "province"]),
        ("/v1/report?date=2024-09-30&by=institution",
         ["report", "--date", "2024-09-30", "--by", "institution"]),
        ("/v1/report?date=2024-02-29&category=GREEN&category=TOTAL",
         ["report", "--date", "2024-02-29", "--category", "GREEN", "--category", "TOTAL"]),
        ("/v1/report?date=2024-02-29&category=GREEN,TOTAL&by=province",
         ["report", "--date", "2024-02-29", "--category", "GREEN", "--category", "TOTAL", "--by", "province"]),
        ("/v1/series?category=GREEN&from=2023-01-01&to=2024-09-15",
         ["series", "--category", "GREEN", "--from", "2023-01-01", "--to", "2024-09-15"]),
        ("/v1/series?category=TOTAL&from=2023-01-01&to=2024-12-31&step=quarter&by=province",
         ["series", "--category", "TOTAL", "--from", "2023-01-01", "--to", "2024-12-31", "--step", "quarter",
          "--by", "province"]),
        ("/v1/series?category=TOTAL&from=2024-08-01&to=2024-08-05&step=day",
         ["series", "--category", "TOTAL", "--from", "2024-08-01", "--to", "2024-08-05", "--step", "day"]),
    ]
    if who in ("regulator", "B0001"):
        queries.append(("/v1/loans/B0001/L1", ["loan", "--institution", "B0001", "--loan-id", "L1"]))
        queries.append(("/v1/loans/B0001/" + urllib.parse.quote("L/2 x", safe=""),
                        ["loan", "--institution", "B0001", "--loan-id", "L/2 x"]))
    for path, cli in queries:
        status, headers, body = get(server, path, server.tokens[who])
        expected = server.run_cli(who, *cli, "--format", "json")
        check(status == 200, f"{who} {path}: status {status}: {body[:200]!r}")
        check(headers.get("Content-Type", "").startswith("application/json"), f"{path}: content type")
        check(body == expected, f"{who} {path}: body differs from the CLI's JSON\n  http: {body[:300]!r}\n"
                                f"  cli:  {expected[:300]!r}")


def main():
    build = sys.argv[1]
    server = harness.Server(build)
    try:
        reg, adm, b1, b2 = (server.tokens[k] for k in ("regulator", "admin", "B0001", "B0002"))
        for who in ("regulator", "B0001", "B0002"):
            same_as_cli(server, who)

        # Exactness above 2^53 and province names.
        status, _, body = get(server, "/v1/report?date=2024-09-30&category=GREEN&by=province", reg)
        check(b'"balance_fen":10000000000000007' in body, f"GREEN Shanghai balance not exact: {body!r}")
        rows = json.loads(body)["rows"]
        check([r["group_name"] for r in rows if r["group"] == "31"] == ["上海市"], f"group_name: {rows}")
        check(all("group_name" in r for r in rows), "every province row has group_name")

        # An institution sees only its own figures.
        by_inst = {r["group"]: r for r in json.loads(get(
            server, "/v1/report?date=2024-09-30&by=institution&category=TOTAL", reg)[2])["rows"]}
        for who in ("B0001", "B0002"):
            own = json.loads(get(server, "/v1/report?date=2024-09-30&category=TOTAL", server.tokens[who])[2])
            check(own["rows"][0]["balance_fen"] == by_inst[who]["balance_fen"],
                  f"{who} TOTAL {own['rows'][0]['balance_fen']} != regulator's {by_inst[who]['balance_fen']}")
            inst_rows = json.loads(get(server, "/v1/report?date=2024-09-30&by=institution",
                                       server.tokens[who])[2])["rows"]
            check({r["group"] for r in inst_rows} == {who}, f"{who} by institution sees {inst_rows}")

        # Roles and tokens.
        s, h, body = get(server, "/v1/report?date=2024-09-30")
        error_of(s, body, 401, "UNAUTHENTICATED", "no token")
        check("Bearer" in h.get("WWW-Authenticate", ""), "401 carries WWW-Authenticate: Bearer")
        s, _, body = get(server, "/v1/report?date=2024-09-30", "not-a-token")
        error_of(s, body, 401, "UNAUTHENTICATED", "unknown token")
        s, _, body = get(server, "/v1/report?date=2024-09-30", headers={"Authorization": "Basic " + reg})
        error_of(s, body, 401, "UNAUTHENTICATED", "not a bearer token")
        for path in ("/v1/report?date=2024-09-30", "/v1/series?category=TOTAL&from=2024-01-01&to=2024-02-01",
                     "/v1/loans/B0001/L1"):
            s, _, body = get(server, path, adm)
            error_of(s, body, 403, "PERMISSION_DENIED", "admin " + path, "admin")
        s, _, body = get(server, "/v1/loans/B0001/L1", b2)
        error_of(s, body, 403, "PERMISSION_DENIED", "another institution's loan", "own")
        s, _, body = get(server, "/v1/loans/B0001/NOPE", reg)
        error_of(s, body, 404, "NOT_FOUND", "unknown loan")
        s, _, body = get(server, "/v1/nothing", reg)
        error_of(s, body, 404, "NOT_FOUND", "unknown path")

        # Bad inputs: 400 with a message saying what.
        bad = [("/v1/report", "date"), ("/v1/report?date=2024-02-30", "2024-02-30"),
               ("/v1/report?date=1989-12-31", "1990-01-01"), ("/v1/report?date=2024-09-30&by=city", "city"),
               ("/v1/report?date=2024-09-30&category=NOPE", "NOPE"),
               ("/v1/report?date=2024-09-30&date=2024-09-30", "more than once"),
               ("/v1/report?date=2024-09-30&colour=red", "colour"),
               ("/v1/report?date=%zz", "percent"),
               ("/v1/series?from=2024-01-01&to=2024-02-01", "category"),
               ("/v1/series?category=TOTAL&from=2024-03-01&to=2024-02-01", "after"),
               ("/v1/series?category=TOTAL&from=2024-01-01&to=2024-02-01&step=week", "week"),
               ("/v1/loans/b0001/L1", "institution_id")]
        for path, fragment in bad:
            s, _, body = get(server, path, reg)
            error_of(s, body, 400, "INVALID_ARGUMENT", path, fragment)
        # A category that only a rules file defines (docs/categories.md) is asked for by name.
        error_of(*get(server, "/v1/report?date=2024-09-30&category=green", reg)[::2], 400,
                 "INVALID_ARGUMENT", "a malformed category name", "green")
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
        rules = json.load(open(os.path.join(root, "rules", "default.json")))
        rules["version"] = "http-test"
        rules["categories"].append({"name": "GREEN_SRDI", "rule": {"all": [{"flag": "green"}, {"flag": "srdi"}]}})
        rules["region_groups"] = [{"name": "EAST", "region_prefix": ["31", "32", "33"]}]
        rules_file = os.path.join(server.dir, "http-test-rules.json")
        with open(rules_file, "w") as f:
            json.dump(rules, f)
        applied = subprocess.run([server.cli, "admin", "rules", "apply", rules_file, *server.cli_args("admin")],
                                 capture_output=True, text=True, timeout=120)
        check(applied.returncode == 0, f"admin rules apply: {applied.stderr}")
        for path, cli in (("/v1/report?date=2024-09-30&category=GREEN_SRDI&by=region_group",
                           ["report", "--date", "2024-09-30", "--category", "GREEN_SRDI", "--by", "region_group"]),
                          ("/v1/series?category=GREEN_SRDI&from=2024-01-01&to=2024-09-30",
                           ["series", "--category", "GREEN_SRDI", "--from", "2024-01-01", "--to", "2024-09-30"])):
            s, _, body = get(server, path, reg)
            check(s == 200, f"{path}: {s} {body}")
            want = server.run_cli("regulator", *cli, "--format", "json")
            check(body == want and b"GREEN_SRDI" in body,
                  f"{path} differs from the CLI's JSON:\n  http: {body[:300]!r}\n  cli:  {want[:300]!r}")
        s, h, body = get(server, "/v1/health", reg, method="POST")
        error_of(s, body, 400, "INVALID_ARGUMENT", "POST", "GET")

        # Public endpoints.
        s, _, body = get(server, "/v1/health")
        check(s == 200 and json.loads(body)["status"] == "ok", f"health: {s} {body!r}")
        s, _, body = get(server, "/openapi.json")
        check(s == 200 and json.loads(body)["openapi"].startswith("3."), f"openapi: {s}")
        s, h, body = get(server, "/")
        check(s == 200 and h.get("Content-Type", "").startswith("text/html"), f"console: {s} {h}")
        check("default-src 'none'" in h.get("Content-Security-Policy", ""), "console CSP")

        # Bounds: a request head over the limit.
        s, _, body = get(server, "/v1/health", headers={"X-Filler": "x" * (20 << 10)})
        error_of(s, body, 400, "RESOURCE_EXHAUSTED", "oversized head", "bytes")
        # A request with a body is refused.
        host, port = server.http.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
            reply = sock.recv(4096)
            check(reply.startswith(b"HTTP/1.1 400"), f"body refused: {reply[:100]!r}")
        # Keep-alive: several requests on one connection.
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        for _ in range(3):
            conn.request("GET", "/v1/report?date=2024-09-30&category=TOTAL", headers={"Authorization": "Bearer " + reg})
            r = conn.getresponse()
            check(r.status == 200, "keep-alive request")
            r.read()
        conn.close()

        # No token in the log, but requests are logged.
        log = server.log_text()
        for who, token in server.tokens.items():
            check(token not in log, f"{who}'s token appears in the log")
        check("GET /v1/report" in log, "requests are logged (debug)")
    finally:
        code = server.stop()
    check(code is not None, "loanledgerd did not stop on SIGTERM")

    # Bounds that need their own server: connection cap and timeout.
    server = harness.Server(build, ["--http-connections-max", "3", "--http-timeout-ms", "2000"], submit=False)
    try:
        host, port = server.http.rsplit(":", 1)
        idle = [socket.create_connection((host, int(port)), timeout=10) for _ in range(3)]
        time.sleep(0.2)
        with socket.create_connection((host, int(port)), timeout=10) as extra:
            reply = extra.recv(4096)
            check(reply.startswith(b"HTTP/1.1 503"), f"connection over the cap: {reply[:100]!r}")
            check(b"UNAVAILABLE" in reply, "cap answer names UNAVAILABLE")
        start = time.time()
        closed = idle[0].recv(100)  # the server closes an idle connection at the timeout
        took = time.time() - start
        check(closed == b"" and took < 10, f"idle connection closed after {took:.1f} s ({closed!r})")
        for s in idle:
            s.close()
        time.sleep(0.3)
        s, _, body = get(server, "/v1/health")
        check(s == 200, "a new connection is served once the others closed")
    finally:
        server.stop()

    # TLS: the same certificate as the binary port.
    server = harness.Server(build, tls=True, submit=False)
    try:
        import ssl
        ctx = ssl.create_default_context(cafile=server.cafile)
        host, port = server.http.rsplit(":", 1)
        conn = http.client.HTTPSConnection(host, int(port), timeout=10, context=ctx)
        conn.request("GET", "/v1/report?date=2024-09-30", headers={"Authorization": "Bearer " + server.tokens["regulator"]})
        r = conn.getresponse()
        body = r.read()
        check(r.status == 200 and body == server.run_cli("regulator", "report", "--date", "2024-09-30",
                                                        "--format", "json"), f"https report: {r.status} {body[:100]!r}")
        conn.close()
    finally:
        server.stop()

    print(f"http api: {'FAILED (' + str(len(FAILURES)) + ')' if FAILURES else 'passed'}")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
