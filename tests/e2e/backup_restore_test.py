#!/usr/bin/env python3
"""Online backup and restore end to end (issue 18, item 1; deploy/README.md "Backups").

1. Under load: while `loanledger submit` streams a file into the server,
   `loanledger admin backup DIR` adds backup 1. It holds at least the
   batches the server had applied before the request (admin stats),
   `loanledgerd --verify-backup` finds it sound, and a copy restored from it
   verifies clean with that many batches.
2. Once the load is done, backup 2 is incremental (copies less than its
   size); restored with `loanledgerd --restore` into a new directory and
   served by a second server, it gives the same report JSON (several
   dates, national / by province / by institution) as the first server.
3. Restore refuses a non-empty data directory and an unusable backup
   directory is refused by the server, each with a reason.
4. kill -9 of the server during a backup (a few rounds, at random moments
   shortly after the request, with submissions going on): the server
   restarts with every acknowledged batch (the same report as before the
   kill, after the acknowledged submissions), backups 1 and 2 still verify,
   and a later backup into the same directory works and verifies.

usage: backup_restore_test.py BUILD_DIR   (env BACKUP_SEED replays the kill timings)
"""
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from ll_server import start_loanledgerd  # noqa: E402

DATES = ["2023-12-31", "2024-06-30", "2024-12-31"]
BACKUP = re.compile(r"backup: dir=\S+ id=(\d+) batches=(\d+) stream_seq=\d+ size_bytes=(\d+) "
                    r"new_bytes=(\d+) files=\d+ backups_kept=(\d+)")
KILL_ROUNDS = 4
CLI_TIMEOUT_S = 300


def check(cond, what):
    if not cond:
        raise AssertionError(what)


class Env:
    def __init__(self, build, work):
        self.build, self.work = build, work
        self.cli_bin = os.path.join(build, "client/loanledger")
        self.server_bin = os.path.join(build, "server/loanledgerd")

    def token(self, *args):
        out = subprocess.run([self.cli_bin, "token", "new", *args], capture_output=True, text=True,
                             check=True).stdout.splitlines()
        return out[0], out[1]

    def cli(self, server, token, *args, timeout=CLI_TIMEOUT_S):
        return subprocess.run([self.cli_bin, *args, "--server", server.address(), "--token", token],
                              capture_output=True, text=True, timeout=timeout)

    def cli_bg(self, server, token, *args):
        return subprocess.Popen([self.cli_bin, *args, "--server", server.address(), "--token", token],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def offline(self, *args, timeout=CLI_TIMEOUT_S):
        return subprocess.run([self.server_bin, *args], capture_output=True, text=True, timeout=timeout)


def make_files(env, parts):
    """The generated portfolio's B0001 slice, cut into `parts` CSV files of whole loans' events."""
    full = os.path.join(env.work, "all.csv")
    subprocess.run([env.cli_bin, "gen", "--scale", "4e-4", "--seed", "7", "--out", full], check=True,
                   capture_output=True)
    with open(full) as src:
        header = next(src)
        rows = [line for line in src if line.startswith("B0001,")]
    # Events of one loan stay in one file, in order.
    by_loan = {}
    for line in rows:
        by_loan.setdefault(line.split(",", 2)[1], []).append(line)
    loans = list(by_loan)
    paths = []
    for k in range(parts):
        path = os.path.join(env.work, f"part{k}.csv")
        with open(path, "w") as dst:
            dst.write(header)
            for loan in loans[k::parts]:
                dst.writelines(by_loan[loan])
        paths.append(path)
    return paths, len(rows)


def reports(env, server, token):
    out = {}
    for d in DATES:
        for by in (None, "province", "institution"):
            args = ["report", "--date", d, "--format", "json"] + (["--by", by] if by else [])
            r = env.cli(server, token, *args)
            check(r.returncode == 0, f"report {d} {by}: {r.stderr}")
            out[f"{d}/{by}"] = json.loads(r.stdout)
    return out


def stat(env, server, admin, key):
    r = env.cli(server, admin, "admin", "stats")
    check(r.returncode == 0, f"admin stats: {r.stderr}")
    m = re.search(rf"^{key} (\d+)$", r.stdout, re.M)
    check(m is not None, f"admin stats has no {key}: {r.stdout}")
    return int(m.group(1))


def backup(env, server, admin, backups, *extra):
    r = env.cli(server, admin, "admin", "backup", backups, *extra)
    check(r.returncode == 0, f"admin backup: rc {r.returncode} {r.stdout} {r.stderr}")
    m = BACKUP.search(r.stdout)
    check(m is not None, f"admin backup output: {r.stdout!r}")
    print("  " + r.stdout.strip())
    return {k: int(v) for k, v in zip(("id", "batches", "size", "new", "kept"), m.groups())}


def verify_backup(env, backups, backup_id):
    scratch = os.path.join(env.work, f"scratch-{backup_id}-{time.monotonic_ns()}")
    r = env.offline("--verify-backup", backups, "--backup-id", str(backup_id), "--data", scratch)
    check(r.returncode == 0, f"verify-backup {backup_id}: rc {r.returncode} {r.stdout} {r.stderr}")
    check("differences=0" in r.stdout and "checksums ok" in r.stdout, f"verify-backup: {r.stdout}")
    check(not os.path.exists(scratch), "verify-backup left its scratch directory")
    m = re.search(r"batches_replayed=(\d+)", r.stdout)
    return int(m.group(1))


def tail_of(path, offset):
    with open(path, errors="replace") as f:
        f.seek(offset)
        return f.read()


LOAD_CHUNKS = 40


def split_file(path, n):
    """PATH's events in n files (each with the header), in order."""
    with open(path) as f:
        header, lines = f.readline(), f.readlines()
    step = max(1, -(-len(lines) // n))
    out = []
    for k, first in enumerate(range(0, len(lines), step)):
        chunk = f"{path}.{k}"
        with open(chunk, "w") as f:
            f.write(header)
            f.writelines(lines[first:first + step])
        out.append(chunk)
    return out


def submit(env, server, token, path):
    r = env.cli(server, token, "submit", path, "--batch-size", "50")
    check(r.returncode == 0, f"submit {path}: rc {r.returncode} {r.stderr}")


def main():
    build = os.path.abspath(sys.argv[1])
    seed = int(os.environ.get("BACKUP_SEED", str(random.SystemRandom().randrange(1 << 30))))
    rng = random.Random(seed)
    print(f"backup/restore e2e, seed {seed} (BACKUP_SEED={seed} replays the kill timings)")
    with tempfile.TemporaryDirectory(prefix="loanledger-backup-") as work:
        env = Env(build, work)
        inst, inst_line = env.token("--role", "institution", "--institution", "B0001")
        reg, reg_line = env.token("--role", "regulator")
        admin, admin_line = env.token("--role", "admin")
        tokens = os.path.join(work, "tokens")
        with open(tokens, "w") as f:
            f.write("\n".join([inst_line, reg_line, admin_line]) + "\n")
        parts, events = make_files(env, 3 + KILL_ROUNDS)
        print(f"{events} events in {len(parts)} files")
        data = os.path.join(work, "data")
        backups = os.path.join(work, "backups")
        log = os.path.join(work, "server.log")
        # Loan snapshots every 2,000 events: backups carry one, and later ones a newer one.
        server_args = ["--snapshot-events", "2000"]
        server = start_loanledgerd(build, data, tokens, log, server_args)
        try:
            submit(env, server, inst, parts[0])

            # 1. A backup under load: part 1 goes in LOAD_CHUNKS files, one CLI run after another,
            # so that the load spans the backup however fast the machine is; the backup starts
            # once the first chunk is acknowledged.
            chunks = split_file(parts[1], LOAD_CHUNKS)
            first_done = threading.Event()
            load_errors = []

            def feed():
                for k, path in enumerate(chunks):
                    r = env.cli(server, inst, "submit", path, "--batch-size", "2")
                    if r.returncode != 0:
                        load_errors.append(f"{path}: rc {r.returncode} {r.stderr}")
                    if k == 0:
                        first_done.set()
                first_done.set()
            loader = threading.Thread(target=feed)
            loader.start()
            check(first_done.wait(CLI_TIMEOUT_S), "the load's first chunk was not acknowledged")
            check(loader.is_alive(), "the load finished before the backup began")
            applied_before = stat(env, server, admin, "batches_applied")
            b1 = backup(env, server, admin, backups)
            still_loading = loader.is_alive()
            loader.join(CLI_TIMEOUT_S * len(chunks))
            check(not loader.is_alive(), "the load did not finish")
            check(not load_errors, f"submit under backup: {load_errors[:2]}")
            check(b1["id"] == 1 and b1["batches"] >= applied_before,
                  f"backup 1 holds {b1['batches']} batches, {applied_before} were applied before it")
            print(f"backup 1 under load: {b1['batches']} batches (>= {applied_before} before it; "
                  f"load still running after it: {still_loading})")
            check(verify_backup(env, backups, 1) == b1["batches"], "backup 1 replays its batches")

            # 2. Incremental backup 2 after the load; restore; same figures.
            submit(env, server, inst, parts[2])
            expected = reports(env, server, reg)
            b2 = backup(env, server, admin, backups)
            check(b2["id"] == 2 and b2["kept"] == 2, f"backup 2: {b2}")
            check(b2["new"] < b2["size"], f"backup 2 is not incremental: new {b2['new']} of {b2['size']}")
            check(b2["batches"] == stat(env, server, admin, "batches_applied"), "backup 2 after the load")
            restored = os.path.join(work, "restored")
            r = env.offline("--restore", backups, "--data", restored)
            check(r.returncode == 0, f"restore: {r.stdout} {r.stderr}")
            check(f"batches={b2['batches']}" in r.stdout, f"restore output: {r.stdout}")
            second = start_loanledgerd(build, restored, tokens, os.path.join(work, "restored.log"))
            try:
                got = reports(env, second, reg)
                check(got == expected, "the restored server's reports differ from the original's")
                r = env.cli(second, admin, "admin", "verify")
                check(r.returncode == 0 and "differences=0" in r.stdout, f"verify restored: {r.stdout}")
            finally:
                second.stop()
            print(f"backup 2: restored, {len(expected)} reports equal, new {b2['new']} of {b2['size']} bytes")
            r1 = os.path.join(work, "restored1")
            r = env.offline("--restore", backups, "--backup-id", "1", "--data", r1)
            check(r.returncode == 0 and f"batches={b1['batches']}" in r.stdout, f"restore 1: {r.stdout}")
            r = env.offline("--verify", "--data", r1)
            check(r.returncode == 0 and "differences=0" in r.stdout, f"verify of restore 1: {r.stdout}")

            # 3. Refusals with reasons.
            r = env.offline("--restore", backups, "--data", restored)
            check(r.returncode == 2 and "not empty" in r.stderr, f"restore into non-empty: {r.stderr}")
            r = env.cli(server, admin, "admin", "backup", os.path.join(data, "inside"))
            check(r.returncode != 0 and "outside the data directory" in r.stderr, f"inside: {r.stderr}")
            r = env.cli(server, admin, "admin", "backup", "relative/dir")
            check(r.returncode != 0 and "absolute" in r.stderr, f"relative: {r.stderr}")
            r = env.cli(server, reg, "admin", "backup", backups)
            check(r.returncode != 0, "a regulator token took a backup")

            # 4. kill -9 during a backup.
            interrupted = 0
            for k in range(KILL_ROUNDS):
                submit(env, server, inst, parts[3 + k])  # acknowledged: must survive
                before = reports(env, server, reg)
                mark = os.path.getsize(log)
                load = env.cli_bg(server, inst, "submit", parts[3 + k], "--batch-size", "5")  # duplicates
                req = env.cli_bg(server, admin, "admin", "backup", backups)
                deadline = time.monotonic() + 30
                while "backup to " not in tail_of(log, mark) and time.monotonic() < deadline:
                    time.sleep(0.002)
                time.sleep(rng.uniform(0.0, 0.03))
                server.kill9()
                for p in (req, load):  # they would retry the dead server for a while
                    p.kill()
                    p.communicate()
                text = tail_of(log, mark)
                done = re.search(r"backup \d+ written to", text) is not None
                interrupted += "backup to " in text and not done
                print(f"kill round {k}: backup {'had completed' if done else 'interrupted'}")
                server = start_loanledgerd(build, data, tokens, log, server_args, append_log=True)
                check(reports(env, server, reg) == before, f"round {k}: figures changed by the kill")
                for backup_id in (1, 2):
                    verify_backup(env, backups, backup_id)
            check(interrupted > 0, "no kill landed during a backup; lower the delays")
            b = backup(env, server, admin, backups, "--keep", "3")
            check(b["kept"] == 3, f"keep 3: {b}")
            check(verify_backup(env, backups, b["id"]) == b["batches"], "the backup after the kills")
            r = env.cli(server, admin, "admin", "verify")
            check(r.returncode == 0 and "differences=0" in r.stdout, f"verify after kills: {r.stdout}")
            print(f"kill -9 during backups: {interrupted} of {KILL_ROUNDS} interrupted; server, "
                  "backups 1 and 2 and a later backup all sound")
        finally:
            server.stop()
    print("OK")


if __name__ == "__main__":
    main()
