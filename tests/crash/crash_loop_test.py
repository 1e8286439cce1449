#!/usr/bin/env python3
"""Crash loop (issue: reliability, item 1): SIGKILL loanledgerd at random
moments while `loanledger submit` streams a file, restart it, resubmit, and
check that nothing acknowledged is ever lost and nothing is half applied.

Each round: start the server on the same data dir; run `loanledger submit`
on the whole file (small pipelined batches); kill -9 the server after a
random delay; wait for the CLI (it reconnects and resends what was not
acknowledged, or gives up). The CLI's summary line counts what was
acknowledged in that run, a prefix of the file. Invariant per round: the
events of the prefix acknowledged in earlier rounds come back as
duplicates, never applied again (a lost acknowledged batch would be
applied twice).

At the end: one uninterrupted submit applies the rest (exit 0, everything a
duplicate or applied), `loanledgerd --verify` finds no difference, and the
reports (several dates, no grouping / by province / by institution) equal
those of a reference server that was fed the same file once without any
crash: an independent recomputation of every figure.

usage: crash_loop_test.py BUILD_DIR [ROUNDS]   (env CRASH_ROUNDS, CRASH_SEED, CRASH_SCALE)
CRASH_SCALE (default 1e-3) sizes the file; once it is all acknowledged the
next epoch renames every loan and streams it again into the same store, so
kills keep landing mid-submission. Each round's server writes loan
snapshots every 200, 1,000 or 5,000 events or at its default interval
(chosen at random), so kills also land while a snapshot is written and
every restart loads a snapshot and replays the journal's tail. CRASH_KILL_MAX_S (default 0.4) bounds the
delay before each kill.
"""
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from ll_server import start_loanledgerd  # noqa: E402

SUMMARY = re.compile(r"applied=(\d+) duplicates=(\d+) batches=(\d+) rejected=(\d+)")
DATES = ["2022-06-30", "2023-03-31", "2023-12-31", "2024-09-30", "2024-12-31"]


def start_server(build, data, tokens, log, snapshot_events=0):
    """loanledgerd on 127.0.0.1 port 0 (tests/support/ll_server.py): .port(), .kill9(), .stop()."""
    return start_loanledgerd(build, data, tokens, log, ["--snapshot-events", str(snapshot_events)])


def cli(build, port, token, *args, timeout=300):
    return subprocess.run([os.path.join(build, "client/loanledger"), *args, "--server", f"127.0.0.1:{port}",
                           "--token", token], capture_output=True, text=True, timeout=timeout)


def make_tokens(build, work):
    def new(*args):
        out = subprocess.run([os.path.join(build, "client/loanledger"), "token", "new", *args],
                             capture_output=True, text=True, check=True).stdout.splitlines()
        return out[0], out[1]
    inst, inst_line = new("--role", "institution", "--institution", "B0001")
    reg, reg_line = new("--role", "regulator")
    path = os.path.join(work, "tokens")
    with open(path, "w") as f:
        f.write(inst_line + "\n" + reg_line + "\n")
    return path, inst, reg


def make_csv(build, work, seed):
    """One institution's slice of the generated portfolio (valid, realistic)."""
    full = os.path.join(work, "all.csv")
    scale = os.environ.get("CRASH_SCALE", "1e-3")
    subprocess.run([os.path.join(build, "client/loanledger"), "gen", "--scale", scale, "--seed", str(seed),
                    "--out", full], check=True, capture_output=True)
    path = os.path.join(work, "b0001.csv")
    with open(full) as src, open(path, "w") as dst:
        header = next(src)
        dst.write(header)
        n = 0
        for line in src:
            if line.startswith("B0001,"):
                dst.write(line)
                n += 1
    return path, n


def reports(build, port, token):
    out = {}
    for d in DATES:
        for by in (None, "province", "institution"):
            args = ["report", "--date", d, "--format", "json"] + (["--by", by] if by else [])
            r = cli(build, port, token, *args)
            if r.returncode != 0:
                raise RuntimeError(f"report failed: {r.stderr}")
            out[(d, by)] = json.loads(r.stdout)
    return out


def main():
    build = os.path.abspath(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else int(os.environ.get("CRASH_ROUNDS", "30"))
    seed = int(os.environ.get("CRASH_SEED", str(random.SystemRandom().randrange(1 << 30))))
    rng = random.Random(seed)
    kill_max_s = float(os.environ.get("CRASH_KILL_MAX_S", "0.4"))  # a kill lands within this after the start
    print(f"crash loop: {rounds} rounds, seed {seed} (CRASH_SEED={seed} replays the kill timings)")
    failures = []
    with tempfile.TemporaryDirectory(prefix="loanledger-crash-") as work:
        tokens, inst, reg = make_tokens(build, work)
        csv, events = make_csv(build, work, 3)
        print(f"file: {events} events")
        data = os.path.join(work, "data")
        acked_prefix = 0   # events acknowledged in earlier rounds (a prefix of the file)
        kills = 0
        kills_mid_submit = 0  # the kill cut a submission short (the CLI did not finish)
        lines = open(csv).read().splitlines(keepends=True)
        header, base = lines[0], lines[1:]

        def epoch_lines(epoch):
            # Epoch k > 0 renames every loan (suffix "~k"): a fresh stream for the same store,
            # so that every round's kill can land in the middle of a submission.
            if epoch == 0:
                return base
            out = []
            for line in base:
                f = line.split(",", 2)
                out.append(f"{f[0]},{f[1]}~{epoch},{f[2]}")
            return out

        epoch, body = 0, base
        for r in range(rounds):
            if acked_prefix >= len(body):
                epoch += 1
                body = epoch_lines(epoch)
                acked_prefix = 0
            # Resume a little before the acknowledged prefix: the overlap must come back as duplicates.
            start = max(0, acked_prefix - rng.randrange(0, 3000))
            part = os.path.join(work, "part.csv")
            with open(part, "w") as f:
                f.write(header)
                f.writelines(body[start:])
            # Loan snapshots every few hundred events in most rounds: kills land while one is
            # written, and each start loads a snapshot and replays the journal since.
            server = start_server(build, data, tokens, os.path.join(work, "server.log"),
                            rng.choice([0, 200, 1000, 5000]))
            sub = subprocess.Popen([os.path.join(build, "client/loanledger"), "submit", part, "--batch-size",
                                    str(rng.choice([10, 20, 50])), "--server", f"127.0.0.1:{server.port()}",
                                    "--token", inst], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            time.sleep(rng.uniform(0.0, kill_max_s))
            server.kill9()
            kills += 1
            out, _ = sub.communicate(timeout=300)
            kills_mid_submit += 1 if sub.returncode != 0 else 0
            m = SUMMARY.findall(out)
            if not m:
                failures.append(f"round {r}: no summary line from submit (exit {sub.returncode})")
                continue
            applied, dups, _, rejected = map(int, m[-1])
            acked = applied + dups
            if rejected:
                failures.append(f"round {r}: {rejected} events rejected")
            # What earlier rounds had acknowledged and this round re-acknowledged must be duplicates.
            if dups < min(acked, acked_prefix - start):
                failures.append(f"round {r}: acknowledged prefix {acked_prefix}, resumed at {start}, but only "
                                f"{dups} duplicates of {acked} acknowledged: an acknowledged batch was lost")
            acked_prefix = max(acked_prefix, start + acked)
            print(f"round {r:3d}: epoch {epoch} from {start:6d} acknowledged {acked:6d} (applied {applied}, "
                  f"duplicates {dups}), prefix {acked_prefix}, submit exit {sub.returncode}")
        # Everything of every epoch, in order: what the store must hold in the end.
        full = os.path.join(work, "all_epochs.csv")
        with open(full, "w") as f:
            f.write(header)
            for k in range(epoch + 1):
                f.writelines(epoch_lines(k))
        csv, events = full, len(base) * (epoch + 1)
        # The last, uninterrupted submit completes the file.
        server = start_server(build, data, tokens, os.path.join(work, "final.log"))
        done = cli(build, server.port(), inst, "submit", csv)
        m = SUMMARY.findall(done.stdout)
        if done.returncode != 0 or not m or int(m[-1][0]) + int(m[-1][1]) != events:
            failures.append(f"final submit: exit {done.returncode}, {done.stdout.strip()} {done.stderr.strip()}")
        elif int(m[-1][1]) < acked_prefix:
            failures.append(f"final submit: {m[-1][1]} duplicates < acknowledged prefix {acked_prefix}")
        got = reports(build, server.port(), reg)
        if server.stop() != 0:
            failures.append("server did not stop cleanly on SIGTERM")
        verify = subprocess.run([os.path.join(build, "server/loanledgerd"), "--verify", "--data", data,
                                 "--tokens", tokens], capture_output=True, text=True, timeout=300)
        if verify.returncode != 0:
            failures.append(f"--verify exited {verify.returncode}: {verify.stdout[-2000:]}{verify.stderr[-2000:]}")
        # Reference: the same file into a fresh server, once, no crash.
        ref = start_server(build, os.path.join(work, "ref"), tokens, os.path.join(work, "ref.log"))
        cli(build, ref.port(), inst, "submit", csv)
        want = reports(build, ref.port(), reg)
        ref.stop()
        for key in want:
            if got[key] != want[key]:
                failures.append(f"report {key} differs from the crash-free reference")
        print(f"kills survived: {kills} ({kills_mid_submit} during a submission); "
              f"events acknowledged: {acked_prefix} of {events}; reports compared: {len(want)}")
    for f in failures:
        print("FAIL:", f)
    print(f"crash loop (seed {seed}): {'FAILED' if failures else 'passed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
