#!/usr/bin/env python3
"""End to end: `loanledger admin rules` against a real loanledgerd (issue 16; docs/categories.md,
"Rules files"; docs/policy-2025.md).

Data: `loanledger gen` (seed 16), the loans of a few institutions, each institution's events
cut in two parts (A then B, in file order) and submitted through the CLI with its own token.

References first: a fresh server started with `--rules rules/policy-2025.json` and a fresh
server under the default rules, each fed A then B; every report (several dates, every category of
its rules, no grouping / by province / by institution / by region_group) and a few series are
kept as the CLI's JSON.

Phase 1 (apply under load), server S on the default rules:
- `admin rules show`: version 2024-default, number 1, the default file's text.
- Bad files (unknown predicate, cycle, unknown category, bad name, too many categories, not
  JSON) are refused with exit 2 and `FIELD: REASON`; rules, history and reports unchanged.
- A is submitted; then B is submitted (small batches, one CLI per institution) while a
  regulator asks for reports in a loop, and `admin rules apply rules/policy-2025.json` runs
  meanwhile. Every report answers, names 2024-default or 2025-policy, and once a report has
  said 2025-policy none says 2024-default again.
- After the switch: every report equals the fresh policy server's, `admin verify` finds no
  difference, `rules show` has both versions, the recompute metrics (Prometheus and
  `admin stats`) say one recompute completed and none running.

Phase 2 (kill -9 during a recompute), the same store: rounds that start `admin rules apply`
of the other file (default <-> policy), poll `admin rules show` until it says a recompute is
running, kill -9 the server, and restart it (without --rules). Each restart is on the old or
the new version, its reports equal the fresh server's under that version, `admin verify`
passes. At least one round must have killed mid-recompute and come back on the old version.
A last round kills the server while it starts with `--rules` (the other file), then restarts it
without: consistent again.

usage: rules_e2e_test.py BUILD_DIR   (env RULES_E2E_SCALE, default 3e-4)
"""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
from ll_server import start_loanledgerd  # noqa: E402

DEFAULT = os.path.join(ROOT, "rules", "default.json")
POLICY = os.path.join(ROOT, "rules", "policy-2025.json")
DATES = ["2022-12-31", "2023-06-30", "2024-09-30", "2025-12-31"]
GROUPINGS = [None, "province", "institution", "region_group"]
INSTITUTIONS = 5
KILL_ROUNDS_MAX = 8
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)
    return cond


class Env:
    def __init__(self, build, work):
        self.build, self.work = build, work
        self.ll = os.path.join(build, "client", "loanledger")
        self.tokens_file = os.path.join(work, "tokens")
        self.token = {}

    def new_token(self, role, institution=None):
        args = [self.ll, "token", "new", "--role", role] + (["--institution", institution] if institution else [])
        out = subprocess.run(args, capture_output=True, text=True, check=True).stdout.splitlines()
        with open(self.tokens_file, "a") as f:
            f.write(out[1] + "\n")
        self.token[institution or role] = out[0]

    def cli(self, server, who, *args, timeout=300):
        return subprocess.run([self.ll, *args, "--server", server.address(), "--token", self.token[who]],
                              capture_output=True, text=True, timeout=timeout)

    def start(self, data, log, *extra):
        return start_loanledgerd(self.build, data, self.tokens_file, os.path.join(self.work, log),
                                 list(extra), append_log=True, timeout_s=120)


def make_data(env, scale):
    """Per institution: (A file, B file), each with the header, in file order."""
    full = os.path.join(env.work, "all.csv")
    subprocess.run([env.ll, "gen", "--scale", str(scale), "--seed", "16", "--out", full], check=True,
                   capture_output=True)
    lines = {}
    with open(full) as f:
        header = next(f)
        for line in f:
            lines.setdefault(line.split(",", 1)[0], []).append(line)
    chosen = sorted(lines, key=lambda i: -len(lines[i]))[:INSTITUTIONS]
    parts = {}
    for inst in chosen:
        cut = len(lines[inst]) * 3 // 5
        paths = []
        for name, chunk in (("a", lines[inst][:cut]), ("b", lines[inst][cut:])):
            path = os.path.join(env.work, f"{inst}-{name}.csv")
            with open(path, "w") as out:
                out.write(header)
                out.writelines(chunk)
            paths.append(path)
        parts[inst] = paths
        env.new_token("institution", inst)
    return parts


def submit(env, server, parts, which, batch_size=1000):
    for inst, paths in parts.items():
        r = env.cli(server, inst, "submit", paths[which], "--batch-size", str(batch_size))
        check(r.returncode == 0 and "rejected=0" in r.stdout, f"submit {paths[which]}: {r.stdout} {r.stderr}")


def reports(env, server, policy):
    """Every figure a regulator can ask for, as the CLI's JSON text, keyed by the question."""
    out = {}
    for date in DATES:
        for by in GROUPINGS:
            args = ["report", "--date", date, "--format", "json"] + (["--by", by] if by else [])
            r = env.cli(server, "regulator", *args)
            check(r.returncode == 0, f"report {args}: {r.stderr}")
            out[" ".join(args)] = r.stdout
    series = [("TOTAL", "province"), ("GREEN", None)]
    if policy:
        series += [("STRATEGIC_EMERGING", "region_group"), ("TRADITIONAL_UPGRADE_MLT", "province")]
    for category, by in series:
        args = ["series", "--category", category, "--from", "2022-01-31", "--to", "2025-12-31",
                "--format", "json"] + (["--by", by] if by else [])
        r = env.cli(server, "regulator", *args)
        check(r.returncode == 0, f"series {args}: {r.stderr}")
        out[" ".join(args)] = r.stdout
    return out


def rules_show(env, server):
    """`admin rules show`: its "# ..." lines (stderr: version, history, recompute), then the rules
    file (stdout, alone: it parses as JSON)."""
    r = env.cli(server, "admin", "admin", "rules", "show")
    check(r.returncode == 0, f"rules show: {r.stderr}")
    try:
        json.loads(r.stdout)
    except ValueError:
        check(False, f"rules show: stdout is not the rules file alone: {r.stdout[:200]!r}")
    return "".join(line for line in r.stderr.splitlines(True) if line.startswith("# ")) + r.stdout


def current_version(show):
    """('2024-default', 1) from `admin rules show`'s first line."""
    first = show.splitlines()[0]  # "# rules version V (number N, applied T)"
    version = first.split(" ")[3]
    number = int(first.split("(number ")[1].split(",")[0])
    return version, number


def compare(got, want, what):
    differing = [k for k in want if got.get(k) != want[k]]
    if differing:
        k = differing[0]
        check(False, f"{what}: {len(differing)} of {len(want)} answers differ, e.g. {k}:\n"
                     f"  got:  {got.get(k, '')[:400]}\n  want: {want[k][:400]}")
    else:
        print(f"{what}: {len(want)} answers equal", flush=True)


def metrics(server):
    with urllib.request.urlopen(f"http://{server.address('metrics')}/metrics", timeout=10) as r:
        text = r.read().decode()
    return {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
            if line.startswith("loanledger_rules_")}


def references(env, parts):
    want = {}
    for name, extra in (("policy", ["--rules", POLICY]), ("default", [])):
        server = env.start(os.path.join(env.work, f"ref-{name}"), f"ref-{name}.log", *extra)
        try:
            submit(env, server, parts, 0)
            submit(env, server, parts, 1)
            want[name] = reports(env, server, name == "policy")
        finally:
            server.stop()
    sample = json.loads(want["policy"][f"report --date {DATES[2]} --format json --by region_group"])
    check(sample["rules_version"] == "2025-policy", "the policy reference names its version")
    groups = {row["group"] for row in sample["rows"]}
    check(groups == {"JING_JIN_JI", "YANGTZE_RIVER_DELTA", "GREATER_BAY_AREA"},
          f"region groups with loans: {groups}")
    national = json.loads(want["policy"][f"report --date {DATES[2]} --format json"])
    balance = {row["category"]: row["balance_fen"] for row in national["rows"]}
    check(balance.get("STRATEGIC_EMERGING", 0) > 0 and balance.get("TRADITIONAL_UPGRADE_MLT", 0) > 0,
          f"the new categories hold loans: {balance}")
    return want


def bad_files(env, server, before_show, before_report):
    policy = json.load(open(POLICY))
    cases = {
        "unknown-predicate": ({"version": "bad", "categories": [{"name": "A", "rule": {"industry": ["C"]}}]},
                              "categories[0].rule.industry: unknown predicate"),
        "cycle": ({"version": "bad", "categories": [{"name": "A", "rule": {"category": "B"}},
                                                     {"name": "B", "rule": {"category": "A"}}]},
                  "categories[0].rule.category: cycle: A -> B -> A"),
        "unknown-category": (dict(policy, categories=policy["categories"] + [
            {"name": "X", "rule": {"category": "NOWHERE"}}]), "unknown category \"NOWHERE\""),
        "bad-name": ({"version": "bad", "categories": [{"name": "green", "rule": {"flag": "green"}}]},
                     "categories[0].name: bad name"),
        "too-many": ({"version": "bad", "categories": [{"name": f"C{i}", "rule": {"flag": "green"}}
                                                        for i in range(65)]}, "categories: too many"),
    }
    for name, (content, expected) in cases.items():
        path = os.path.join(env.work, f"bad-{name}.json")
        with open(path, "w") as f:
            json.dump(content, f)
        r = env.cli(server, "admin", "admin", "rules", "apply", path)
        check(r.returncode == 2 and expected in r.stderr, f"bad file {name}: exit {r.returncode}, {r.stderr!r}")
    path = os.path.join(env.work, "bad-not-json.json")
    with open(path, "w") as f:
        f.write('{"version": "bad", "categories": [')
    r = env.cli(server, "admin", "admin", "rules", "apply", path)
    check(r.returncode == 2 and "not valid JSON" in r.stderr, f"bad file not-json: {r.returncode} {r.stderr!r}")
    check(rules_show(env, server) == before_show, "rules show changed after bad files")
    check(env.cli(server, "regulator", "report", "--date", DATES[2], "--format", "json").stdout == before_report,
          "a report changed after bad files")


def batches_applied(env, server):
    stats = env.cli(server, "admin", "admin", "stats").stdout
    return int(next(l.split()[1] for l in stats.splitlines() if l.startswith("batches_applied ")))


FEED_CHUNKS = 40


def apply_under_load(env, server, parts):
    """B submitted and reports asked while the policy file is applied."""
    stop = threading.Event()
    seen = []  # rules_version of each report, in order
    errors = []

    def ask():
        while not stop.is_set():
            r = env.cli(server, "regulator", "report", "--date", DATES[2], "--by", "province", "--format", "json")
            if r.returncode != 0:
                errors.append(r.stderr)
            else:
                seen.append(json.loads(r.stdout)["rules_version"])

    # Each institution's part B goes in FEED_CHUNKS files, one CLI run after another, so that
    # submissions span the apply however fast the machine is: the apply starts once every
    # feeder has its first chunk acknowledged, and a recompute lasts longer than one CLI run.
    started_feeding = threading.Barrier(len(parts) + 1)

    def feed(inst):
        with open(parts[inst][1]) as f:
            header, lines = f.readline(), f.readlines()
        step = max(1, -(-len(lines) // FEED_CHUNKS))
        for k, first in enumerate(range(0, len(lines), step)):
            path = f"{parts[inst][1]}.{k}"
            with open(path, "w") as out:
                out.write(header)
                out.writelines(lines[first:first + step])
            r = env.cli(server, inst, "submit", path, "--batch-size", "20")
            if r.returncode != 0 or "rejected=0" not in r.stdout:
                errors.append(f"submit {path}: {r.stdout} {r.stderr}")
            if k == 0:
                started_feeding.wait()

    asker = threading.Thread(target=ask)
    feeders = [threading.Thread(target=feed, args=(inst,)) for inst in parts]
    asker.start()
    for t in feeders:
        t.start()
    started_feeding.wait(timeout=120)  # submissions under way
    before = batches_applied(env, server)
    started = time.monotonic()
    r = env.cli(server, "admin", "admin", "rules", "apply", POLICY)
    elapsed = time.monotonic() - started
    still_feeding = sum(t.is_alive() for t in feeders)
    during = batches_applied(env, server) - before
    for t in feeders:
        t.join()
    stop.set()
    asker.join()
    check(r.returncode == 0 and "version=2025-policy number=2" in r.stdout, f"rules apply: {r.stdout} {r.stderr}")
    print(f"apply under load: {elapsed:.2f} s, {during} batches applied meanwhile, {still_feeding} of "
          f"{len(feeders)} submissions still running when it returned, {len(seen)} reports in all", flush=True)
    check(during > 0, "no batch was applied while the apply ran (not under load)")
    check(not errors, f"errors under load: {errors[:3]}")
    check(set(seen) <= {"2024-default", "2025-policy"} and seen, f"report versions: {set(seen)}")
    if "2025-policy" in seen:
        first_new = seen.index("2025-policy")
        check("2024-default" not in seen[first_new:], "a report under the old version after the switch")


def kill_rounds(env, data, want):
    """Kill -9 during recomputes; each restart consistent. Returns the server, running."""
    server = env.start(data, "s.log")
    killed_mid_recompute_old = 0
    for round_no in range(KILL_ROUNDS_MAX):
        version, number = current_version(rules_show(env, server))
        target = DEFAULT if version == "2025-policy" else POLICY
        apply = subprocess.Popen([env.ll, "admin", "rules", "apply", target, "--server", server.address(),
                                  "--token", env.token["admin"]], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        saw_recompute = False
        deadline = time.monotonic() + 60
        while apply.poll() is None and time.monotonic() < deadline:
            r = env.cli(server, "admin", "admin", "rules", "show", timeout=30)
            if "# recomputing under" in r.stderr:
                saw_recompute = True
                break
        server.kill9()
        apply.kill()  # our child; it would try to reconnect to the dead server
        apply.wait()
        server = env.start(data, "s.log")
        after, after_number = current_version(rules_show(env, server))
        check(after in ("2024-default", "2025-policy") and after_number in (number, number + 1),
              f"round {round_no}: restarted on {after} number {after_number} (was {version} {number})")
        compare(reports(env, server, after == "2025-policy"),
                want["policy" if after == "2025-policy" else "default"],
                f"round {round_no}: kill -9 {'during' if saw_recompute else 'around'} a recompute, "
                f"restart on {after}")
        v = env.cli(server, "admin", "admin", "verify")
        check(v.returncode == 0, f"round {round_no}: admin verify after restart: {v.stdout} {v.stderr}")
        if saw_recompute and after == version:
            killed_mid_recompute_old += 1
            if killed_mid_recompute_old >= 2:
                break
    check(killed_mid_recompute_old >= 1, "no round killed the server mid-recompute (store too small?)")
    print(f"kill rounds: {killed_mid_recompute_old} killed mid-recompute and came back on the old version",
          flush=True)
    return server


def kill_at_start(env, data, want, server):
    """loanledgerd --rules FILE applies FILE before listening; kill -9 then, restart without it."""
    version, _ = current_version(rules_show(env, server))
    server.stop()
    target = DEFAULT if version == "2025-policy" else POLICY
    log = os.path.join(env.work, "start-rules.log")
    proc = subprocess.Popen([os.path.join(env.build, "server", "loanledgerd"), "--listen", "127.0.0.1:0",
                             "--metrics-listen", "127.0.0.1:0", "--data", data, "--tokens", env.tokens_file,
                             "--rules", target], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(log, "w"))
    time.sleep(0.3)
    proc.kill()
    proc.wait()
    server = env.start(data, "s.log")
    after, _ = current_version(rules_show(env, server))
    check(after in ("2024-default", "2025-policy"), f"restart after a killed --rules start: {after}")
    compare(reports(env, server, after == "2025-policy"), want["policy" if after == "2025-policy" else "default"],
            f"kill -9 around --rules at start, restart on {after}")
    v = env.cli(server, "admin", "admin", "verify")
    check(v.returncode == 0, f"admin verify after a killed --rules start: {v.stdout} {v.stderr}")
    return server


def main():
    build = os.path.abspath(sys.argv[1])
    scale = float(os.environ.get("RULES_E2E_SCALE", "3e-4"))
    with tempfile.TemporaryDirectory(prefix="loanledger-rules-e2e-") as work:
        env = Env(build, work)
        for role in ("admin", "regulator"):
            env.new_token(role)
        parts = make_data(env, scale)
        t0 = time.monotonic()
        want = references(env, parts)
        print(f"references: {time.monotonic() - t0:.1f} s", flush=True)

        data = os.path.join(work, "s")
        server = env.start(data, "s.log")
        try:
            show = rules_show(env, server)
            check(current_version(show) == ("2024-default", 1), f"a new store's rules: {show[:200]}")
            check(show.rstrip("\n").endswith(open(DEFAULT).read().rstrip("\n")), "rules show prints the default file")
            submit(env, server, parts, 0)
            bad_files(env, server, show, env.cli(server, "regulator", "report", "--date", DATES[2],
                                                 "--format", "json").stdout)
            apply_under_load(env, server, parts)
            compare(reports(env, server, True), want["policy"], "after the switch under load")
            v = env.cli(server, "admin", "admin", "verify")
            check(v.returncode == 0, f"admin verify: {v.stdout} {v.stderr}")
            show = rules_show(env, server)
            check(current_version(show) == ("2025-policy", 2), f"rules show after apply: {show[:200]}")
            check(len([l for l in show.splitlines() if l.startswith("# history:")]) == 2, "two versions kept")
            check(show.rstrip("\n").endswith(open(POLICY).read().rstrip("\n")), "rules show prints the policy file")
            want_metrics = {"loanledger_rules_recomputes_total": 1, "loanledger_rules_recompute_running": 0,
                            "loanledger_rules_version_number": 2}
            deadline = time.monotonic() + 15  # the gauges refresh about once a second
            while time.monotonic() < deadline:
                m = metrics(server)
                if all(m.get(k) == v for k, v in want_metrics.items()):
                    break
                time.sleep(0.2)
            check(all(m.get(k) == v for k, v in want_metrics.items())
                  and m.get("loanledger_rules_recompute_batches_done", 0) > 0
                  and m.get("loanledger_rules_recompute_batches_done") == m.get("loanledger_rules_recompute_batches_total")
                  and m.get("loanledger_rules_recompute_last_duration_seconds", -1) >= 0, f"recompute metrics: {m}")
            stats = env.cli(server, "admin", "admin", "stats").stdout
            check("rules_recomputes_completed 1" in stats and "rules_recompute_running 0" in stats,
                  f"admin stats: {stats}")
            server.stop()
            server = kill_rounds(env, data, want)
            server = kill_at_start(env, data, want, server)
        finally:
            server.stop()
        if failures:
            for name in ("s.log",):
                path = os.path.join(work, name)
                if os.path.exists(path):
                    print(f"---- last lines of {name}:\n" + "".join(open(path).readlines()[-30:]))
    print("rules e2e:", "FAILED" if failures else "passed", f"({len(failures)} failures)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
