#!/usr/bin/env python3
"""Cluster mode under faults (issue 12, Deliver 4), against real nats-server and
loanledgerd processes (tests/support/local_cluster.py), every one stopped by its PID.

    cluster_faults_test.py BUILD_DIR SCENARIO [--keep]

SCENARIO:
  leader_kill     kill -9 the leader mid-submission; prints the failover time (leader death ->
                  first batch acknowledged by the new leader; bound 20 s); the killed node restarts
                  and catches up
  nats_kill       kill -9 one nats-server mid-submission, restart it later
  replica_stop    SIGTERM a follower mid-submission, restart it: it catches up
  new_replica     after half the files, `admin checkpoint` of a follower starts a fourth node;
                  it follows the stream tail and serves the same figures
  deposed_leader  SIGSTOP the leader past its lease (3 s) mid-submission, one file submitted to the
                  new leader meanwhile, SIGCONT: a submit sent to it alone is not acknowledged by
                  it (it follows NOT_LEADER or exits 3); it shows cluster_leader 0 and catches up

Every scenario submits the 151 institution files of `gen --scale 0.00002 --seed 5` with
`loanledger submit --server A,B,C --batch-size 10` (a file whose CLI exits non-zero is rerun),
then checks: each file's last CLI run accounts for all its events (applied + duplicates) and the
`applied=` counts of all its runs do not exceed them (an acknowledged batch lost and resent would
be applied again); every node reaches the same stream seq with the same state digest;
every node's reports (national, --by province, --by institution, JSON) equal a single plain
loanledgerd's fed the same files, to the fen; every node exports every metric family of
deploy/metrics.txt, the cluster-mode-only ones included (check_metrics_exported.py --cluster), and
its stream storage gauges equal what JetStream itself reports of the stream (bytes; messages =
last seq = applied seq; no limits: -1) and of the account (limit; storage >= the stream's).
replica_stop then caps the stream (max_bytes 4x, max_msgs 10x what it holds) and checks every
node shows the new limits and a used ratio of 0.25 (the fullest of them).
"""
import os
import re
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "support"))
sys.path.insert(0, os.path.join(HERE, "..", "deploy"))
import check_metrics_exported  # noqa: E402
from cluster_workload import (SUMMARY, Failure, Submitter, Workload, check, compare_reports, converge,  # noqa: E402
                              finish, leader_of, log, measure_failover, wait_until)
from local_cluster import LoanledgerNode, LocalCluster, scrape  # noqa: E402
from nats_client import NatsClient  # noqa: E402

FAILOVER_BOUND_S = 20.0
STREAM = "LOANLEDGER_P0"
STORAGE_BOUND_S = 15.0  # loanledgerd reads the stream storage every 5 s (ClusterOptions)


def servers(cluster):
    return ",".join(cluster.node(0, r).client() for r in range(1, cluster.replicas + 1))


def start_and_wait(w, cluster, fraction=0.3):
    """Starts the submission and returns it once `fraction` of the files are done."""
    sub = Submitter(w, servers(cluster))
    sub.start()
    wait_until(lambda: sub.done_files >= int(len(w.files) * fraction) or not sub.is_alive(), 120,
               "submission progress")
    check(sub.is_alive(), "the submission ended before the fault (make it longer)")
    return sub


def final_checks(w, cluster, sub, reference):
    sub.finish()
    check(sub.applied <= w.events, f"applied counts of all CLI runs sum to {sub.applied} > "
                                   f"{w.events} events: an acknowledged batch was applied twice")
    nodes = list(cluster.nodes.values())
    converge(w, nodes)
    for n in nodes:
        compare_reports(w.reports(n.client()), reference, n.name)
    log(f"reports of {[n.name for n in nodes]} equal the single node's")
    check_cluster_metrics(nodes)
    check_storage_metrics(cluster, nodes)


def check_cluster_metrics(nodes):
    """Every node exports deploy/metrics.txt's families, those of `# cluster mode only` included
    (the alerts of deploy/prometheus/alerts.yml use them; a single node cannot show them)."""
    url_of = {n.name: f"http://{n.metrics()}/metrics" for n in nodes}
    for n in nodes:
        rc = check_metrics_exported.main([url_of[n.name], "--cluster", "--wait", "5"])
        check(rc == 0, f"{n.name} does not export every family of deploy/metrics.txt (rc {rc}, above)")

    def one_leader():  # what the LoanledgerClusterNoLeader / TwoLeaders alerts sum
        leaders = sum(v for n in nodes for k, v in scrape(n.metrics()).items()
                      if k.startswith("loanledger_cluster_is_leader{"))
        return leaders == 1 or None
    wait_until(one_leader, 20, "loanledger_cluster_is_leader summing to 1 over the partition")
    log(f"metrics of {[n.name for n in nodes]}: every family of deploy/metrics.txt (cluster ones "
        f"included); one leader")


def storage_gauges(node):
    s = scrape(node.metrics())
    return {k.split("{")[0][len("loanledger_cluster_"):]: v for k, v in s.items()
            if k.startswith("loanledger_cluster_")}


def wait_storage(nodes, want, what):
    """Waits until every node's loanledger_cluster_* gauges include `want` (name without the prefix ->
    value); fails naming the first node and gauges that differ."""
    last = {}

    def agree():
        for n in nodes:
            g = storage_gauges(n)
            diff = {k: (g.get(k), v) for k, v in want.items() if g.get(k) != v}
            if diff:
                last["diff"] = (n.name, diff)
                return None
        return True
    try:
        wait_until(agree, STORAGE_BOUND_S, what, poll_s=0.25)
    except Failure as e:
        raise Failure(f"{e}; {last.get('diff')} (node, {{gauge: (exported, expected)}})")


def check_storage_metrics(cluster, nodes):
    """The stream storage gauges (LoanledgerClusterStreamStorage* alerts) against JetStream's own
    stream and account info, once the submission is over and every node has applied the stream."""
    with NatsClient(cluster.nats.urls()) as nc:
        info = nc.js_api(f"STREAM.INFO.{STREAM}")
        account = nc.js_api("INFO")
    state, config = info["state"], info["config"]
    check(state["messages"] > 0 and state["bytes"] > 0, f"{STREAM} is empty: {state}")
    check(state["messages"] == state["last_seq"],
          f"{STREAM}: {state['messages']} messages, last seq {state['last_seq']}: one journal record per "
          f"stream message expected")
    check(config.get("max_bytes", -1) == -1 and config.get("max_msgs", -1) == -1,
          f"loanledgerd created {STREAM} with limits: {config}")
    limit = account["limits"]["max_storage"]
    wait_storage(nodes, {"applied_stream_seq": state["last_seq"],
                         "stream_bytes": state["bytes"], "stream_messages": state["messages"],
                         "stream_max_bytes": -1, "stream_max_messages": -1, "stream_max_age_seconds": -1,
                         "jetstream_storage_limit_bytes": limit if limit > 0 else -1,
                         "stream_storage_used_ratio": -1},
                 "stream storage gauges equal to JetStream's stream info")
    for n in nodes:
        g = storage_gauges(n)
        # The account holds the stream on every replica, and the KV buckets.
        check(g["jetstream_storage_bytes"] >= state["bytes"],
              f"{n.name}: jetstream_storage_bytes {g['jetstream_storage_bytes']} < stream bytes {state['bytes']}")
        check(g["stream_storage_age_seconds"] < 10 and g["stream_storage_read_failures"] >= 0,
              f"{n.name}: storage figures {g['stream_storage_age_seconds']} s old")
    log(f"stream storage gauges of {[n.name for n in nodes]}: {state['bytes']} bytes, {state['messages']} "
        f"messages (= last seq = applied), no stream limit, account limit {limit}, as JetStream says")


def cap_stream(cluster, nodes):
    """Caps the stream (far above what it holds, so nothing is discarded): every node shows the new
    limits, and the used ratio of the fuller one (bytes: 1/4; messages: 1/10)."""
    with NatsClient(cluster.nats.urls()) as nc:
        info = nc.js_api(f"STREAM.INFO.{STREAM}")
        state, config = info["state"], dict(info["config"])
        config["max_bytes"] = 4 * state["bytes"]
        config["max_msgs"] = 10 * state["messages"]
        nc.js_api(f"STREAM.UPDATE.{STREAM}", config)
        after = nc.js_api(f"STREAM.INFO.{STREAM}")["state"]
    check(after["messages"] == state["messages"], f"capping {STREAM} discarded records: {state} -> {after}")
    wait_storage(nodes, {"stream_max_bytes": config["max_bytes"], "stream_max_messages": config["max_msgs"],
                         "stream_storage_used_ratio": 0.25},
                 "stream limit gauges equal to the limits just set")
    log(f"{STREAM} capped at {config['max_bytes']} bytes / {config['max_msgs']} messages: every node "
        f"shows them and a used ratio of 0.25")


def leader_kill(w, cluster, reference):
    leader = leader_of(cluster)
    sub = start_and_wait(w, cluster)
    t0 = time.monotonic()
    cluster.kill9(0, leader.replica)
    log(f"killed leader {leader.name} (kill -9) with {sub.done_files}/{len(w.files)} files done")
    survivors = [n for n in cluster.nodes.values() if n is not leader]
    seconds, new = measure_failover(survivors, t0, FAILOVER_BOUND_S)
    print(f"FAILOVER leader death -> first batch acknowledged by the new leader ({new.name}): "
          f"{seconds:.2f} s", flush=True)
    sub.finish()
    cluster.start_node(0, leader.replica)
    log(f"{leader.name} restarted")
    final_checks(w, cluster, sub, reference)


def journal_stream_leader(cluster):
    """The nats-server (k) leading the partition's journal stream (not a KV bucket's), else 1."""
    for k, n in cluster.nats.nodes.items():
        try:
            jsz = n.jsz_query("accounts=true&streams=true")
        except (OSError, ValueError):
            continue
        for account in jsz.get("account_details") or []:
            for st in account.get("stream_detail") or []:
                leader = (st.get("cluster") or {}).get("leader")
                if not st.get("name", "").startswith("KV_") and leader:
                    for kk, nn in cluster.nats.nodes.items():
                        if nn.name == leader:
                            return kk
    return 1


def nats_kill(w, cluster, reference):
    sub = start_and_wait(w, cluster)
    k = journal_stream_leader(cluster)
    cluster.nats.kill9(k)
    log(f"killed nats-{k}, the journal stream's leader (kill -9), with {sub.done_files}/{len(w.files)} "
        f"files done")
    wait_until(lambda: sub.done_files >= int(len(w.files) * 0.6) or not sub.is_alive(), 120,
               "submission progress with a NATS node down")
    cluster.nats.start_node(k)
    log(f"nats-{k} restarted with {sub.done_files}/{len(w.files)} files done")
    final_checks(w, cluster, sub, reference)
    # Then every nats-server at once: each node still stops on SIGTERM with exit 0, closing
    # its NATS connection first rather than waiting out each pending request's timeout.
    for j in sorted(cluster.nats.nodes):
        cluster.nats.kill9(j)
    log("killed every nats-server (kill -9); stopping the nodes")
    for n in cluster.nodes.values():
        t = time.monotonic()
        cluster.stop_node(n.partition, n.replica)
        rc = n.proc.returncode if n.proc is not None else None
        check(rc == 0, f"{n.name} exited {rc} after SIGTERM with NATS gone")
        with open(n.log, errors="replace") as f:
            check("NATS unreachable while stopping: closing the connection first" in f.read(),
                  f"{n.name} did not close its NATS connection before stopping")
        log(f"{n.name} stopped in {time.monotonic() - t:.1f} s with NATS gone")


def replica_stop(w, cluster, reference):
    leader = leader_of(cluster)
    follower = next(n for n in cluster.nodes.values() if n is not leader)
    sub = start_and_wait(w, cluster)
    seq_at_stop = int(w.stats(follower.client())["cluster_applied_stream_seq"])
    cluster.stop_node(0, follower.replica)
    log(f"stopped follower {follower.name} (SIGTERM) at applied seq {seq_at_stop}")
    sub.finish()
    cluster.start_node(0, follower.replica)
    log(f"{follower.name} restarted")
    final_checks(w, cluster, sub, reference)
    final = int(w.stats(follower.client())["cluster_applied_stream_seq"])
    check(final > seq_at_stop, f"{follower.name} did not miss anything ({seq_at_stop} -> {final})")
    log(f"{follower.name} caught up from seq {seq_at_stop} to {final}")
    cap_stream(cluster, list(cluster.nodes.values()))


def deposed_leader(w, cluster, reference):
    old = leader_of(cluster)
    # The last two files are kept back: one goes to the new leader while the old one is paused (the
    # stream moves past the old leader's position, fencing whatever it has not published yet), the
    # other to the old leader alone after it resumes.
    during, last = w.files[-2], w.files[-1]
    sub = Submitter(w, servers(cluster), files=w.files[:-2])
    sub.start()
    wait_until(lambda: sub.done_files >= len(w.files) // 3 or not sub.is_alive(), 120, "submission progress")
    cluster.pause(0, old.replica)
    t0 = time.monotonic()
    log(f"paused leader {old.name} (SIGSTOP) with {sub.done_files}/{len(w.files)} files done")
    others = [n for n in cluster.nodes.values() if n is not old]
    new = wait_until(lambda: next((n for n in others if n.is_leader()), None), FAILOVER_BOUND_S,
                     "a new leader while the old one is paused")
    moved = Submitter(w, new.client(), files=[during])
    moved.run()
    check(moved.error is None, f"submit to the new leader during the pause: {moved.error}")
    direct_applied = moved.applied
    # Well past the old lease (3 s) before it resumes.
    time.sleep(max(0.0, 4.0 - (time.monotonic() - t0)))
    log(f"{new.name} leads after {time.monotonic() - t0:.1f} s; resuming {old.name}")
    cluster.resume(0, old.replica)
    p = w.run_cli(["submit", "--server", old.client(), "--token", last[2], "--batch-size", "10", last[1]],
                  check_rc=False)
    log(f"submit to {old.name} alone after SIGCONT: rc={p.returncode} {p.stdout.strip().splitlines()[-1:]} "
        f"{p.stderr.strip()[-200:]}")
    check(p.returncode in (0, 3), f"submit to the deposed leader exited {p.returncode}")
    m = SUMMARY.findall(p.stdout)
    direct_applied += int(m[-1][0]) if m else 0
    def deposed():
        st = w.stats(old.client())
        return st.get("cluster_leader") == "0" and st.get("cluster_leader_node") == new.name
    wait_until(deposed, 10, f"{old.name} showing cluster_leader 0 and naming {new.name}", poll_s=0.2)
    if p.returncode == 0:
        # Acknowledged by the new leader: the CLI opened a session there for this institution.
        with open(new.log, errors="replace") as f:
            check(f"as institution of {last[0]} " in f.read(),
                  f"the submit to {old.name} exited 0 but never reached the new leader {new.name}")
        log("the CLI followed NOT_LEADER to the new leader, which acknowledged the file")
    else:
        check("NOT_LEADER" in p.stderr or "leader" in p.stderr, f"rc 3 without NOT_LEADER: {p.stderr}")
        rerun = Submitter(w, new.client(), files=[last])
        rerun.run()
        check(rerun.error is None, f"rerun on the new leader: {rerun.error}")
        direct_applied += rerun.applied
    sub.finish()
    sub.applied += direct_applied
    final_checks(w, cluster, sub, reference)
    st = w.stats(old.client())
    check(st.get("cluster_leader") == "0" and int(st.get("cluster_step_downs", "0")) >= 1,
          f"{old.name}: cluster_leader {st.get('cluster_leader')} step_downs {st.get('cluster_step_downs')}")


def new_replica(w, cluster, reference):
    """A brand-new replica starts from a follower's checkpoint (admin checkpoint) and the stream tail."""
    leader = leader_of(cluster)
    donor = next(n for n in cluster.nodes.values() if n is not leader)
    half = len(w.files) // 2
    first = Submitter(w, servers(cluster), files=w.files[:half])
    first.run()
    check(first.error is None, f"first half: {first.error}")
    new = LoanledgerNode(cluster.root, 0, cluster.replicas + 1)
    os.makedirs(new.dir, exist_ok=True)
    out = w.run_cli(["admin", "checkpoint", os.path.abspath(new.data), "--server", donor.client(),
                     "--token", w.admin]).stdout
    m = re.search(r"stream_seq=(\d+)", out)
    check(m is not None and int(m.group(1)) > 0, f"admin checkpoint: {out!r}")
    checkpoint_seq = int(m.group(1))
    log(f"checkpoint of {donor.name} at stream seq {checkpoint_seq} -> {new.data}")
    # The rest of the files go in while the new node starts from the checkpoint.
    rest = Submitter(w, servers(cluster), files=w.files[half:])
    rest.start()
    cluster.nodes[(0, new.replica)] = new
    cluster.start_node(0, new.replica)
    log(f"{new.name} started from the checkpoint")
    rest.finish()
    check(rest.error is None, f"second half: {rest.error}")
    rest.applied += first.applied
    final_checks(w, cluster, rest, reference)
    st = w.stats(new.client())
    check(st.get("cluster_leader") == "0" and int(st["cluster_applied_stream_seq"]) > checkpoint_seq,
          f"{new.name}: {st.get('cluster_applied_stream_seq')} after checkpoint {checkpoint_seq}")
    log(f"{new.name} serves the same figures from stream seq {checkpoint_seq} to "
        f"{st['cluster_applied_stream_seq']}")


SCENARIOS = {f.__name__: f for f in (leader_kill, nats_kill, replica_stop, deposed_leader, new_replica)}


def main(argv):
    if len(argv) < 2 or argv[1] not in SCENARIOS:
        print(f"usage: {argv[0]} BUILD_DIR {{{'|'.join(SCENARIOS)}}} [--keep]", file=sys.stderr)
        return 2
    build, scenario, keep = argv[0], argv[1], "--keep" in argv
    work = tempfile.mkdtemp(prefix=f"ll-cluster-{scenario}-")
    cluster = None
    ok = False
    try:
        w = Workload(build, work)
        w.prepare()
        reference = w.reference()
        log("single-node reference done")
        cluster = LocalCluster(os.path.join(work, "cluster"), tokens=w.tokens, bin_dir=build)
        t = time.monotonic()
        cluster.up()
        log(f"cluster up in {time.monotonic() - t:.1f} s")
        SCENARIOS[scenario](w, cluster, reference)
        ok = True
    except Failure as e:
        print(f"FAIL {scenario}: {e}", file=sys.stderr)
    finally:
        rc = finish(cluster, ok, keep, work, f"PASS {scenario}")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
