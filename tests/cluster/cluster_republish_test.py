#!/usr/bin/env python3
"""The quorum power-loss tail put back (issue 12; docs/cluster.md, "What an acknowledgement
promises"): `loanledgerd --republish-tail`, against real nats-server and loanledgerd processes
(tests/support/local_cluster.py), every one stopped by its PID.

    cluster_republish_test.py BUILD_DIR [rollback|wiped] [--keep]

The workload of cluster_faults_test.py (151 institution files) goes to a 1x3 cluster in three
parts. After part A the whole cluster is stopped and the three NATS JetStream store directories
are copied aside; part B is submitted after a restart, then everything is stopped again and the
old NATS stores are put back: JetStream now ends at part A's last record, while every loanledgerd
store holds part B's records (what a power loss of every NATS machine before their fsync leaves).
Then:
  - a node started as usual refuses ("... but the stream ends at ...", naming --republish-tail);
  - (mode `wiped`) with the stream holding the node's records 1 and 3 but a foreign record at 2
    (its last record equal to the node's), --republish-tail refuses naming sequence 2 (the
    stream is not a prefix of the node's log) and publishes nothing; the NATS stores are emptied
    again. Then --republish-tail is paused (SIGSTOP) while it holds the lease, past its TTL, and a
    fourth node (empty) takes the lease: resumed, the repair publishes nothing and refuses naming it;
  - (mode `rollback`) while a fourth node with an empty store (behind the stream, so it starts)
    leads, --republish-tail refuses naming it; it is stopped;
  - node 1 with --republish-tail puts positions A+1..A+B back and serves; JetStream's stream
    then ends at the node's position with one message per record. In mode `rollback` the repair
    holds the lease for a while first (LOANLEDGER_TEST_REPUBLISH_PAUSE_MS, more than a lease TTL,
    so it has to renew it): the fourth node, started meanwhile, runs but never leads until the
    repair has given the lease back;
  - node 2 with --republish-tail refuses (not ahead); nodes 2 and 3 start as usual;
  - every node reaches the digest the cluster had before the loss, at the same stream seq;
  - part C (the last file) is submitted; every node's reports equal a single loanledgerd's fed
    every file, and the digests are equal.
Mode `wiped` empties the NATS stores instead of rolling them back (`rollback`, the default): the
stream is gone, the first node recreates it empty, and --republish-tail puts back every record
from 1.
"""
import base64
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "support"))
from cluster_workload import (Failure, Submitter, Workload, check, compare_reports, converge, finish,  # noqa: E402
                              log, wait_until)
from local_cluster import LoanledgerNode, LocalCluster, find_binary  # noqa: E402
from nats_cluster import ClusterError  # noqa: E402
from nats_client import NatsClient, NatsError  # noqa: E402

STREAM = "LOANLEDGER_P0"
SUBJECT = "loanledger.p0.journal"
LEASE_MS = 3000  # loanledgerd's default --lease-ms
PAUSE_MS = 4 * LEASE_MS  # the repair holds the lease that long before its check (rollback)


def servers(cluster):
    return ",".join(cluster.node(0, r).client() for r in range(1, cluster.replicas + 1))


def submit(w, cluster, files, what):
    sub = Submitter(w, servers(cluster), files=files)
    sub.run()
    check(sub.error is None, f"{what}: {sub.error}")
    check(all(r[1] == 0 for r in sub.runs), f"{what}: a CLI run failed: {sub.runs}")
    return sub.applied


def refused(cluster, replica, extra, want):
    """Starts node `replica` (with `extra` flags); it must exit, its log naming every string of `want`."""
    n = cluster.node(0, replica)
    try:
        cluster.start_node(0, replica, extra)
    except ClusterError as e:
        text = str(e)
        for s in want:
            check(s in text, f"{n.name} {' '.join(extra)} exited without {s!r} in its log:\n{text}")
        line = next((ln for ln in text.splitlines() if want[0] in ln), "")
        log(f"{n.name} {' '.join(extra)} refused: {line.strip()[-240:]}")
        return
    raise Failure(f"{n.name} {' '.join(extra)} started; it should have refused ({want[0]!r})")


def nats_stores(cluster, action, suffix):
    """'save': copies every nats-K/js to js.SUFFIX; 'restore': replaces js by a copy of js.SUFFIX;
    'wipe': empties js."""
    for n in cluster.nats.nodes.values():
        check(not n.running(), f"{n.name} runs while its store is copied")
        saved = n.store_dir + "." + suffix
        if action == "save":
            shutil.copytree(n.store_dir, saved, symlinks=True)
        elif action == "wipe":
            shutil.rmtree(n.store_dir)
            os.makedirs(n.store_dir)
        else:
            shutil.rmtree(n.store_dir)
            shutil.copytree(saved, n.store_dir, symlinks=True)


def stream_state(cluster, timeout_s=60.0):
    """The journal stream's state, once JetStream answers for it (a stream leader after a start)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with NatsClient(cluster.nats.urls()) as nc:
                return nc.js_api(f"STREAM.INFO.{STREAM}")["state"]
        except (NatsError, OSError) as e:
            if time.monotonic() > deadline:
                raise Failure(f"stream info of {STREAM}: {e}")
            time.sleep(0.2)


def read(path, offset=0):
    """A log's text from byte `offset` (a node's latest start: LoanledgerNode._log_offset)."""
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def stream_messages(cluster, seqs):
    """The journal stream's messages at `seqs`: (body bytes, {"Loanledger-Encoding": ...} or {})
    each; a record travels zstd-compressed when that header says so (docs/cluster.md)."""
    out = []
    with NatsClient(cluster.nats.urls()) as nc:
        for q in seqs:
            m = nc.js_api(f"STREAM.MSG.GET.{STREAM}", {"seq": q})["message"]
            hdrs = base64.b64decode(m.get("hdrs", "")).decode(errors="replace")
            enc = re.search(r"^Loanledger-Encoding: *(\S+)", hdrs, re.M)
            out.append((base64.b64decode(m["data"]), {"Loanledger-Encoding": enc.group(1)} if enc else {}))
    return out


def stream_records(cluster, seqs):
    """The journal stream's message bodies at `seqs` (bytes)."""
    return [body for body, _ in stream_messages(cluster, seqs)]


def spawn_repair(cluster, pause_ms):
    """Starts node 1 with --republish-tail holding the lease pause_ms before its check (without
    waiting for it to serve); returns once it holds the lease."""
    n1 = cluster.node(0, 1)
    binary = find_binary(cluster.bin_dir, "server", "loanledgerd")
    os.environ["LOANLEDGER_TEST_REPUBLISH_PAUSE_MS"] = str(pause_ms)
    try:
        n1.spawn(binary, cluster.nats.urls(), cluster.partitions, cluster.tokens, cluster.partition_map,
                 ["--republish-tail"])
    finally:
        del os.environ["LOANLEDGER_TEST_REPUBLISH_PAUSE_MS"]
    wait_until(lambda: "holds the lease of partition 0" in read(n1.log, n1._log_offset), 60,
               f"{n1.name} --republish-tail holding the lease")
    return n1


def repair_loses_lease(cluster):
    """Node 1 --republish-tail paused (SIGSTOP) while it holds the lease, past the lease's TTL: a
    fourth node (an empty store, not ahead of the empty stream, so it starts) takes the lease once it
    expires. Resumed, the repair publishes nothing and refuses, naming the new holder."""
    n1 = spawn_repair(cluster, PAUSE_MS // 2)
    cluster.pause(0, 1)
    other = LoanledgerNode(cluster.root, 0, cluster.replicas + 1)
    cluster.nodes[(0, other.replica)] = other
    try:
        cluster.start_node(0, other.replica)
        wait_until(other.is_leader, 30, f"{other.name} leading once {n1.name}'s lease expired")
    finally:
        cluster.resume(0, 1)
    try:
        code = n1.proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        raise Failure(f"{n1.name} --republish-tail still runs 90 s after it lost the lease")
    text = read(n1.log, n1._log_offset)
    check(code != 0 and f"node {other.name} leads partition 0" in text
          and ("lost the lease" in text or "not renewed in time" in text)
          and "republished stream" not in text,
          f"{n1.name} --republish-tail exited {code} after losing the lease:\n{text[-3000:]}")
    state = stream_state(cluster)
    check(state["last_seq"] == 0, f"a repair that lost its lease published: {state}")
    cluster.stop_node(0, other.replica)
    del cluster.nodes[(0, other.replica)]
    line = next(ln for ln in text.splitlines() if "leads partition 0" in ln)
    log(f"{n1.name}'s repair, paused past its lease while {other.name} took it, published nothing: "
        f"{line.strip()[-160:]}")


def repair_while_another_starts(cluster):
    """Node 1 --republish-tail holding the lease PAUSE_MS before its check; a fourth node started
    meanwhile must not lead while the repair holds the lease (it may once it is given back)."""
    n1 = spawn_repair(cluster, PAUSE_MS)
    t_held = time.monotonic()
    other = cluster.nodes[(0, cluster.replicas + 1)]
    cluster.start_node(0, other.replica)  # behind the stream's end, so it starts (and campaigns)
    t_other = time.monotonic()
    checks = 0
    while True:
        other_log = read(other.log, other._log_offset)  # first: the lease was held while this was written
        other_leads = other.is_leader()
        if "gave the lease of partition 0 back" in read(n1.log, n1._log_offset):
            break
        check("leads partition 0" not in other_log and other_leads is not True,
              f"{other.name} leads while {n1.name}'s repair holds the lease:\n{other_log[-2000:]}")
        checks += 1
        state = n1.poll_ready()
        check(state is None,
              f"{n1.name} --republish-tail: {state}; {n1.log}:\n{read(n1.log, n1._log_offset)[-2000:]}")
        time.sleep(0.2)
    held_s = time.monotonic() - t_other
    check(held_s > LEASE_MS / 1000 and checks > 5,
          f"{other.name} ran only {held_s:.1f} s ({checks} checks) during the repair: the pause is too "
          f"short to show anything")
    wait_until(lambda: n1.poll_ready() is not None, 60, f"{n1.name} ready after the repair")
    check(n1.poll_ready() == "ready", f"{n1.name} after the repair: {n1.poll_ready()}")
    log(f"{other.name}, started {t_other - t_held:.1f} s into the repair's hold of the lease, ran "
        f"{held_s:.1f} s beside it ({checks} checks) without leading")
    cluster.stop_node(0, other.replica)
    del cluster.nodes[(0, other.replica)]


def run(w, cluster, reference, mode):
    files = w.files
    half = len(files) // 2
    part_a, part_b, part_c = files[:half], files[half:-1], files[-1:]
    applied = submit(w, cluster, part_a, "part A")
    seq_a = converge(w, list(cluster.nodes.values()))["ll-0-1"]["digest_seq"]
    cluster.down()
    nats_stores(cluster, "save", "a")
    log(f"part A: {len(part_a)} files, stream seq {seq_a}; NATS stores saved")

    t = time.monotonic()
    cluster.up()
    # The nodes serve once they hold or follow the lease; after a restart of
    # every NATS server the journal stream's own leader may come later (over
    # 24 s once under load): part B would then fail every CLI retry.
    stream_state(cluster, 90.0)
    log(f"cluster up again, its stream led, in {time.monotonic() - t:.1f} s")
    applied += submit(w, cluster, part_b, "part B")
    st = converge(w, list(cluster.nodes.values()))
    digest_b, seq_b = st["ll-0-1"]["state_digest"], st["ll-0-1"]["digest_seq"]
    check(seq_b > seq_a, f"part B moved the stream from {seq_a} to {seq_b}")
    check(seq_b >= 3, f"part B: stream seq {seq_b}")
    first_records = stream_messages(cluster, [1, 2, 3])  # the nodes' records at 1..3
    cluster.down()
    restore = "wipe" if mode == "wiped" else "restore"
    if mode == "wiped":
        seq_a = 0
    nats_stores(cluster, restore, "a")
    log(f"part B: stream seq {seq_b}, digest {digest_b}; everything stopped, NATS stores "
        f"{'emptied' if mode == 'wiped' else 'of part A put back'}")

    cluster.nats.start()
    if mode != "wiped":
        state = stream_state(cluster)
        check(state["last_seq"] == seq_a, f"the restored stream ends at {state['last_seq']}, not {seq_a}")
    refused(cluster, 1, [], ["but the stream ends at " + str(seq_a), "--republish-tail"])
    if mode == "wiped":
        state = stream_state(cluster)  # created empty by the refused node
        check(state["last_seq"] == 0, f"the recreated stream: {state}")

    if mode == "wiped":
        # The node's records at 1 and 3 but a foreign one at 2: the stream's last record is the
        # node's, yet the stream is not a prefix of its log. (Here only: restarting NATS on the
        # emptied stores is quick; `rollback` takes the other branch, a stream that is a prefix.)
        with NatsClient(cluster.nats.urls()) as nc:
            crafted = [first_records[0], (b"not a journal record", {}), first_records[2]]
            for q, (rec, headers) in enumerate(crafted, 1):
                ack = nc.request(SUBJECT, rec, headers=headers)
                check(isinstance(ack, dict) and ack.get("seq") == q, f"crafted record {q}: {ack}")
        refused(cluster, 1, ["--republish-tail"],
                [f"{STREAM} sequence 2 differs from this store's record", "not a prefix",
                 "nothing republished"])
        state = stream_state(cluster)
        check(state["last_seq"] == 3 and state["messages"] == 3,
              f"after the refusal the stream holds {state['messages']} messages up to {state['last_seq']}, "
              f"not the 3 crafted ones: something was published")
        check(stream_records(cluster, [1, 2, 3])[1] == b"not a journal record", "record 2 changed")
        cluster.nats.stop()
        nats_stores(cluster, restore, "a")
        cluster.nats.start()
        log("foreign record refused; NATS stores emptied again")
        repair_loses_lease(cluster)
    else:
        # A node behind the stream's end starts as usual and leads: no republish meanwhile.
        fresh = LoanledgerNode(cluster.root, 0, cluster.replicas + 1)
        cluster.nodes[(0, fresh.replica)] = fresh
        cluster.start_node(0, fresh.replica)
        wait_until(fresh.is_leader, 20, f"{fresh.name} (empty store) leading")
        refused(cluster, 1, ["--republish-tail"], [f"node {fresh.name} leads partition 0",
                                                    "stop every other node"])
        cluster.stop_node(0, fresh.replica)
        log(f"refused while {fresh.name} led; {fresh.name} stopped")

    t = time.monotonic()
    if mode == "wiped":
        cluster.start_node(0, 1, ["--republish-tail"])
    else:
        repair_while_another_starts(cluster)
    text = read(cluster.node(0, 1).log, cluster.node(0, 1)._log_offset)
    check(f"republishing {seq_a + 1}..{seq_b}" in text and "republished stream" in text,
          f"ll-0-1 does not log the republish:\n{text[-2000:]}")
    check(seq_a == 0 or f"records 1..{seq_a} equal this store's" in text,
          f"ll-0-1 does not log the check of the stream's records 1..{seq_a}:\n{text[-2000:]}")
    state = stream_state(cluster)
    check(state["last_seq"] == seq_b and state["messages"] == seq_b,
          f"after --republish-tail the stream holds {state['messages']} messages up to {state['last_seq']}, "
          f"expected {seq_b}")
    log(f"ll-0-1 --republish-tail put {seq_b - seq_a} records back ({seq_a + 1}..{seq_b}) and serves, "
        f"in {time.monotonic() - t:.1f} s")

    refused(cluster, 2, ["--republish-tail"], ["is not ahead, nothing to republish"])
    cluster.up()  # nodes 2 and 3, as usual
    st = converge(w, list(cluster.nodes.values()))
    got = {(s["state_digest"], s["digest_seq"]) for s in st.values()}
    check(got == {(digest_b, seq_b)}, f"after the repair: {got}, before the loss: {(digest_b, seq_b)}")
    log("every node is back at the digest of before the loss")

    applied += submit(w, cluster, part_c, "part C")
    check(applied == w.events, f"parts A, B, C applied {applied} of {w.events} events")
    nodes = list(cluster.nodes.values())
    st = converge(w, nodes)
    check(next(iter(st.values()))["digest_seq"] > seq_b, "part C did not move the stream")
    for n in nodes:
        compare_reports(w.reports(n.client()), reference, n.name)
    log(f"reports of {[n.name for n in nodes]} equal the single node's")


def main(argv):
    if len(argv) < 1:
        print(f"usage: {sys.argv[0]} BUILD_DIR [rollback|wiped] [--keep]", file=sys.stderr)
        return 2
    build, keep = argv[0], "--keep" in argv
    mode = "wiped" if "wiped" in argv[1:] else "rollback"
    work = tempfile.mkdtemp(prefix=f"ll-cluster-republish-{mode}-")
    cluster = None
    ok = False
    t0 = time.monotonic()
    try:
        w = Workload(build, work)
        w.prepare()
        reference = w.reference()
        log("single-node reference done")
        cluster = LocalCluster(os.path.join(work, "cluster"), tokens=w.tokens, bin_dir=build)
        cluster.up()
        run(w, cluster, reference, mode)
        ok = True
    except (Failure, ClusterError) as e:
        print(f"FAIL: {e}", file=sys.stderr)
    finally:
        rc = finish(cluster, ok, keep, work, f"PASS {mode} in {time.monotonic() - t0:.1f} s")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
