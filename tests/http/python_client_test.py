#!/usr/bin/env python3
"""clients/python (package loanledger) against a running loanledgerd (docs/http.md):
report, series, loan as dicts equal to the CLI's JSON, errors as exceptions,
and DataFrames when pandas is installed (skipped, and said so, otherwise).
usage: python_client_test.py BUILD_DIR
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "clients", "python"))
import harness  # noqa: E402
import loanledger  # noqa: E402

FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("FAIL:", what)


def expect_error(cls, code, fn, what):
    try:
        fn()
    except cls as e:
        check(e.code == code, f"{what}: code {e.code}, expected {code}")
        check(bool(e.message), f"{what}: empty message")
        return e
    except Exception as e:  # noqa: BLE001
        check(False, f"{what}: raised {type(e).__name__}: {e}")
        return None
    check(False, f"{what}: no exception")
    return None


def main():
    server = harness.Server(sys.argv[1])
    try:
        c = loanledger.Client(server.url, server.tokens["regulator"])
        cli = lambda who, *a: json.loads(server.run_cli(who, *a, "--format", "json"))  # noqa: E731
        check(c.health()["status"] == "ok", "health")
        rows = c.report("2024-09-30")
        check(rows == cli("regulator", "report", "--date", "2024-09-30")["rows"], "report rows = CLI")
        rows = c.report("2024-09-30", by="province", categories=["GREEN", "TOTAL"])
        check(rows == cli("regulator", "report", "--date", "2024-09-30", "--by", "province", "--category",
                          "GREEN", "--category", "TOTAL")["rows"], "report by province = CLI")
        green_sh = [r for r in rows if r["category"] == "GREEN" and r["group"] == "31"][0]
        check(green_sh["balance_fen"] == 10**16 + 7, f"exact balance above 2^53: {green_sh['balance_fen']}")
        check(green_sh["group_name"] == "上海市", "group_name")
        import datetime
        check(c.report(datetime.date(2024, 9, 30), categories="GREEN") ==
              cli("regulator", "report", "--date", "2024-09-30", "--category", "GREEN")["rows"],
              "report with a date object and one category")
        points = c.series("GREEN", "2023-01-01", "2024-09-30")
        check(points == cli("regulator", "series", "--category", "GREEN", "--from", "2023-01-01", "--to",
                            "2024-09-30")["points"], "series = CLI")
        points = c.series("TOTAL", "2023-01-01", "2024-12-31", step="quarter", by="province")
        check(points == cli("regulator", "series", "--category", "TOTAL", "--from", "2023-01-01", "--to",
                            "2024-12-31", "--step", "quarter", "--by", "province")["points"],
              "series by province = CLI")
        loan = c.loan("B0001", "L/2 x")
        check(loan == cli("regulator", "loan", "--institution", "B0001", "--loan-id", "L/2 x"), "loan = CLI")

        # An institution sees its own figures only.
        b2 = loanledger.Client(server.url, server.tokens["B0002"])
        check(b2.report("2024-09-30") == cli("B0002", "report", "--date", "2024-09-30")["rows"],
              "institution report = its CLI report")
        expect_error(loanledger.Forbidden, "PERMISSION_DENIED", lambda: b2.loan("B0001", "L1"),
                     "another institution's loan")
        expect_error(loanledger.NotFound, "NOT_FOUND", lambda: c.loan("B0001", "NOPE"), "unknown loan")
        e = expect_error(loanledger.BadRequest, "INVALID_ARGUMENT", lambda: c.report("2024-02-30"), "bad date")
        check(e is not None and e.status == 400 and "2024-02-30" in e.message, "bad date message")
        expect_error(loanledger.BadRequest, "INVALID_ARGUMENT", lambda: c.series("NOPE", "2024-01-01", "2024-02-01"),
                     "unknown category")
        expect_error(loanledger.Unauthenticated, "UNAUTHENTICATED",
                     lambda: loanledger.Client(server.url, "wrong").report("2024-09-30"), "wrong token")
        expect_error(loanledger.Forbidden, "PERMISSION_DENIED",
                     lambda: loanledger.Client(server.url, server.tokens["admin"]).report("2024-09-30"), "admin")
        check(issubclass(loanledger.NotFound, loanledger.LoanledgerError), "one base class")

        try:
            import pandas  # noqa: F401
            have_pandas = True
        except ImportError:
            have_pandas = False
        if have_pandas:
            df = c.report("2024-09-30", by="province", as_frame=True)
            check(len(df) == len(c.report("2024-09-30", by="province")), "frame has every row")
            check(str(df["balance_fen"].dtype) == "int64", f"balance dtype {df['balance_fen'].dtype}")
            sh = df[(df["category"] == "GREEN") & (df["group"] == "31")]
            check(int(sh["balance_fen"].iloc[0]) == 10**16 + 7, "frame keeps the exact balance")
            check(list(sh["group_name"]) == ["上海市"], "frame has group_name")
            s = c.series("GREEN", "2023-01-01", "2024-09-30", as_frame=True)
            check(str(s["date"].dtype).startswith("datetime64"), f"series date dtype {s['date'].dtype}")
            check(len(s) == 21, f"series frame points {len(s)}")
            lf = c.loan("B0001", "L1", as_frame=True)
            want = c.loan("B0001", "L1")
            check(len(lf) == 1 and int(lf["balance_fen"].iloc[0]) == want["balance_fen"], f"loan frame {lf}")
            check(str(lf["credit_line_fen"].dtype) == "int64", f"loan credit_line dtype {lf['credit_line_fen'].dtype}")
            check(lf["region_code"].iloc[0] == want["attributes"]["region_code"], "loan frame has the attributes")
            check(list(lf["categories"].iloc[0]) == want["categories"], "loan frame categories")
        else:
            print("pandas not installed: DataFrame checks skipped")

        # Without pandas, as_frame=True is a clear ImportError naming pandas (the rest works).
        saved = sys.modules.get("pandas")
        sys.modules["pandas"] = None  # `import pandas` now raises ImportError
        try:
            for what, fn in (("report", lambda: c.report("2024-09-30", as_frame=True)),
                             ("series", lambda: c.series("GREEN", "2024-01-01", "2024-02-01", as_frame=True)),
                             ("loan", lambda: c.loan("B0001", "L1", as_frame=True))):
                try:
                    fn()
                    check(False, f"{what} as_frame without pandas: no error")
                except ImportError as e:
                    check("pandas" in str(e), f"{what} as_frame without pandas: {e}")
                except Exception as e:  # noqa: BLE001
                    check(False, f"{what} as_frame without pandas raised {type(e).__name__}: {e}")
            check(c.report("2024-09-30", categories=["TOTAL"])[0]["category"] == "TOTAL", "dicts without pandas")
        finally:
            if saved is None:
                del sys.modules["pandas"]
            else:
                sys.modules["pandas"] = saved
    finally:
        server.stop()

    # A server that is not there: Unavailable.
    expect_error(loanledger.Unavailable, "UNAVAILABLE",
                 lambda: loanledger.Client(server.url, "t", timeout=5).report("2024-09-30"), "server stopped")
    print(f"python client: {'FAILED' if FAILURES else 'passed'}")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
