#!/usr/bin/env python3
"""The NATS side of cluster mode alone (tests/support/nats_cluster.py, used by
scripts/cluster.sh): three nats-server on 127.0.0.1 form one JetStream
cluster; an R=3 file stream acknowledges publishes (up to 10 MiB: max_payload
is raised) through the loss of any one server (kill -9, SIGSTOP) and the lost
server rejoins and catches up, also from an empty store; a stopped or killed cluster starts again on its
data with the same client ports; a port taken while a server was down is
replaced and the cluster forms again. Last, a paused stream leader: the other
two elect another and store every acknowledged message once; what the paused
one stores is reported, not asserted (nats-server 2.9 may keep a publish that
reached it while stopped: docs/cluster.md, "Known limits of nats-server 2.9").

usage: nats_cluster_test.py   (needs nats-server on PATH, or NATS_SERVER=path)
"""
import errno
import os
import shutil
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from nats_client import NatsClient, NatsError  # noqa: E402
from nats_cluster import NatsCluster, pid_alive  # noqa: E402

STREAM = "LLTEST"
WAIT_S = 30.0


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok:", what, flush=True)


def node_no(name):
    return int(name.rsplit("-", 1)[1])


def publish(cluster, nodes, count, start, size=16, subject="lltest"):
    """Publishes `count` messages through a server in `nodes`; returns the PubAck seqs."""
    deadline = time.monotonic() + WAIT_S
    seqs = []
    while len(seqs) < count:
        try:
            with NatsClient(cluster.urls(nodes)) as nc:
                while len(seqs) < count:
                    body = (f"{start + len(seqs)}:".encode() + b"x" * size)
                    ack = nc.request(subject, body)
                    if not isinstance(ack, dict) or "seq" not in ack:
                        raise NatsError(f"no PubAck: {ack!r}")
                    seqs.append(ack["seq"])
        except NatsError:
            # An election in progress (no stream leader yet): retry, bounded.
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    return seqs


def js_api(cluster, api, body):
    """A JetStream API call through any server; an error reply saying JetStream is temporarily
    unavailable (a meta election after a fault: 503) or a timeout is tried again, bounded."""
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            with NatsClient(cluster.urls()) as nc:
                return nc.js_api(api, body)
        except NatsError as e:
            if time.monotonic() > deadline or not ("temporarily unavailable" in str(e) or "timed out" in str(e)):
                raise
            time.sleep(0.5)


def stream_detail(node, stream=STREAM):
    """The stream as one server hosts it (its /jsz stream_detail entry), or None."""
    jsz = node.jsz_query("accounts=true&streams=true")
    for account in jsz.get("account_details") or []:
        for s in account.get("stream_detail") or []:
            if s["name"] == stream:
                return s
    return None


def stream_state(node, stream=STREAM):
    """(messages, last_seq) of the stream as stored by one server (its /jsz)."""
    s = stream_detail(node, stream)
    return (s["state"]["messages"], s["state"]["last_seq"]) if s else None


def wait_caught_up(cluster, ks, messages, stream=STREAM):
    deadline = time.monotonic() + WAIT_S
    states = {}
    while time.monotonic() < deadline:
        states = {k: stream_state(cluster.node(k), stream) for k in ks}
        if all(s == (messages, messages) for s in states.values()):
            return
        time.sleep(0.2)
    raise AssertionError(f"not caught up to {messages}: {states}")


def stream_leader(cluster, ks, stream=STREAM, exclude=None):
    """The stream's leader (stream_detail[].cluster.leader) once every server in ks names the same
    one (not `exclude`)."""
    deadline = time.monotonic() + WAIT_S
    views = {}
    while time.monotonic() < deadline:
        views = {}
        for k in ks:
            try:
                views[k] = ((stream_detail(cluster.node(k), stream) or {}).get("cluster") or {}).get("leader")
            except (OSError, ValueError):
                views[k] = None
        leaders = set(views.values())
        if len(leaders) == 1 and None not in leaders and "" not in leaders and exclude not in leaders:
            return leaders.pop()
        time.sleep(0.2)
    raise AssertionError(f"no agreed leader of stream {stream}: {views}")


def pause_stream_leader(cluster, base):
    """Pauses stream LLPAUSE's leader (SIGSTOP), publishes 5 through the others, resumes it and
    reports (does not assert) what the resumed server stores."""
    sleader = stream_leader(cluster, [1, 2, 3], "LLPAUSE")
    paused = node_no(sleader)
    others = [k for k in (1, 2, 3) if k != paused]
    cluster.pause(paused)
    try:
        seqs = publish(cluster, others, 5, base, subject="llpause")
        new_leader = stream_leader(cluster, others, "LLPAUSE", exclude=sleader)
    finally:
        cluster.resume(paused)
    check(seqs == list(range(base + 1, base + 6)),
          f"stream leader nats-{paused} paused: {new_leader} leads, 5 publishes acknowledged in order {seqs}")
    wait_caught_up(cluster, others, base + 5, "LLPAUSE")
    check(True, f"the two not paused store all {base + 5} messages once")
    deadline = time.monotonic() + 10
    state = stream_state(cluster.node(paused), "LLPAUSE")
    while state != (base + 5, base + 5) and time.monotonic() < deadline:
        time.sleep(0.2)
        state = stream_state(cluster.node(paused), "LLPAUSE")
    if state == (base + 5, base + 5):
        print(f"note: nats-{paused}, the paused stream leader, resumed and caught up", flush=True)
    else:
        print(f"note: nats-{paused}, the paused stream leader, stores {state} 10 s after resuming, "
              f"the others {(base + 5, base + 5)}: a known nats-server 2.9 divergence "
              f"(docs/cluster.md); not a failure of this test", flush=True)


def main():
    root = tempfile.mkdtemp(prefix="ll-nats-cluster-")
    # A restarted server keeps its ports unless another process took one meanwhile (the tests
    # beside this one open connections from the same ephemeral range): nats_cluster.py then
    # replaces that port and says so. Same ports are checked only when none was replaced.
    replaced = []

    def warn(m):
        print("warning:", m, flush=True)
        if "retrying with another port" in m:
            replaced.append(m)
    cluster = NatsCluster(root, warn=warn)
    ok = False
    try:
        leader = cluster.start()
        # start() returns once every server counts the whole group (a follower counting 2 right
        # after start failed a 10-run check once); a leader change may follow: wait.
        deadline = time.monotonic() + WAIT_S
        views = cluster.meta_views()
        while not (len(views) == 3 and all(v == (leader, 3) for v in views.values())) and \
                time.monotonic() < deadline:
            time.sleep(0.2)
            views = cluster.meta_views()
        check(len(views) == 3 and all(v == (leader, 3) for v in views.values()),
              f"3 servers, one JetStream meta group of size 3, all see leader {leader}: {views}")
        urls = cluster.urls()

        with NatsClient(urls) as nc:
            info = nc.js_api(f"STREAM.CREATE.{STREAM}", {
                "name": STREAM, "subjects": ["lltest"], "num_replicas": 3, "storage": "file"})
            check(info["config"]["num_replicas"] == 3 and len(info["cluster"]["replicas"]) == 2,
                  "an R=3 file stream: a leader and 2 replicas")
            big = nc.request("lltest", b"b" * (10 * 1024 * 1024), timeout_s=20)
            check(isinstance(big, dict) and big.get("seq") == 1, f"a 10 MiB message is acknowledged: {big}")
        total = 1 + len(publish(cluster, None, 20, 1))
        wait_caught_up(cluster, [1, 2, 3], total)
        check(True, f"every server stores all {total} messages")

        # kill -9 the meta leader: the other two elect another and keep acknowledging.
        dead = node_no(leader)
        dead_pid = cluster.node(dead).pid()
        cluster.kill9(dead)
        check(not pid_alive(dead_pid), f"nats-{dead} (meta leader, pid {dead_pid}) killed with SIGKILL")
        alive = [k for k in (1, 2, 3) if k != dead]
        new_leader = cluster.wait_formed(nodes=alive, timeout_s=WAIT_S, exclude_leader=leader)
        check(node_no(new_leader) in alive, f"the two left elect meta leader {new_leader}")
        seqs = publish(cluster, alive, 20, total)
        check(seqs == list(range(total + 1, total + 21)), "2 of 3 servers acknowledge publishes in order")
        total += 20

        ports = dict(cluster.node(dead).ports)
        seen = len(replaced)
        cluster.start_node(dead)
        if len(replaced) == seen:
            check(cluster.node(dead).ports == ports, f"nats-{dead} restarts on the same ports {ports}")
            check(cluster.urls() == urls, "NATS_URLS unchanged")
        else:
            check(True, f"nats-{dead} restarted on new ports {cluster.node(dead).ports}: {replaced[seen:]}")
            urls = cluster.urls()
        wait_caught_up(cluster, [1, 2, 3], total)
        check(True, f"nats-{dead} rejoined and caught up to {total} messages")

        # SIGSTOP a server that leads neither the meta group nor the stream, publish, resume: it
        # catches up. (A paused stream leader may keep a publish that reached it while stopped, as
        # run 2 of the fourth 10-run check showed: see the end.)
        leader = cluster.wait_formed(timeout_s=WAIT_S)
        sleader = stream_leader(cluster, [1, 2, 3])
        paused = next(k for k in (1, 2, 3) if f"nats-{k}" not in (leader, sleader))
        cluster.pause(paused)
        check(True, f"nats-{paused} paused (meta leader {leader}, stream leader {sleader})")
        others = [k for k in (1, 2, 3) if k != paused]
        publish(cluster, others, 20, total)
        total += 20
        cluster.resume(paused)
        wait_caught_up(cluster, [1, 2, 3], total)
        check(True, f"nats-{paused} paused with SIGSTOP, resumed, caught up to {total}")

        # A machine lost with its disk: a new server under the same name with an empty store
        # rejoins and the stream's leader sends it everything (deploy/README.md, replacing a node).
        lost = paused
        cluster.kill9(lost)
        shutil.rmtree(cluster.node(lost).store_dir)
        publish(cluster, [k for k in (1, 2, 3) if k != lost], 10, total)
        total += 10
        cluster.start_node(lost)
        wait_caught_up(cluster, [1, 2, 3], total)
        check(True, f"nats-{lost} killed, its store deleted, restarted empty: caught up to {total}")

        # The whole cluster stopped (SIGTERM), then killed (SIGKILL): each time it starts again
        # on its data with the same client URLs.
        pids = cluster.pids()
        check(cluster.stop(), "SIGTERM stops every server")
        check(not any(pid_alive(p) for p in pids.values()), "no server left running")
        cluster = NatsCluster(root, warn=warn)  # as `cluster.sh up` on the same DIR: state read back
        seen = len(replaced)
        cluster.start()
        if len(replaced) == seen:
            check(cluster.urls() == urls, "a stopped cluster starts again with the same NATS_URLS")
        else:
            check(True, f"a stopped cluster starts again, a taken port replaced: {replaced[seen:]}")
            urls = cluster.urls()
        wait_caught_up(cluster, [1, 2, 3], total)
        check(True, f"...and all {total} messages")
        for k in (1, 2, 3):
            cluster.kill9(k)
        cluster.start()
        wait_caught_up(cluster, [1, 2, 3], total)
        check(True, f"a cluster killed with SIGKILL starts again with all {total} messages")

        # A port taken while its server was down: replaced, the cluster forms again.
        for k, key in ((2, "client"), (3, "cluster")):
            cluster.stop_node(k)
            taken = cluster.node(k).ports[key]
            with socket.socket() as squatter:
                squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    squatter.bind(("127.0.0.1", taken))
                    squatter.listen(1)
                except OSError as e:  # another process holds it already: taken all the same
                    if e.errno != errno.EADDRINUSE:
                        raise
                cluster.start_node(k)
            check(cluster.node(k).ports[key] != taken, f"nats-{k}: its {key} port {taken} was taken; "
                  f"it starts on {cluster.node(k).ports[key]} instead")
        cluster.wait_formed(timeout_s=WAIT_S)
        publish(cluster, None, 5, total)
        total += 5
        wait_caught_up(cluster, [1, 2, 3], total)
        check(True, f"the cluster forms again and all three store {total} messages")

        # A paused stream leader, on a stream of its own: the other two elect
        # another leader and acknowledge every message once, in order. A publish that reached the
        # paused leader (routed to it) before the election times out and is sent again; nats-server
        # 2.9 may still store that first copy when the paused server resumes, as a replica that
        # no longer matches the others (docs/cluster.md, "Known limits of nats-server 2.9"): what
        # it stores is reported here, not asserted either way. The stream stays: the cluster is
        # stopped next.
        js_api(cluster, "STREAM.CREATE.LLPAUSE", {
            "name": "LLPAUSE", "subjects": ["llpause"], "num_replicas": 3, "storage": "file"})
        base = len(publish(cluster, None, 5, 0, subject="llpause"))
        try:
            wait_caught_up(cluster, [1, 2, 3], base, "LLPAUSE")
        except AssertionError as e:
            # nats-server 2.9 after the restarts above: a server whose meta group log no longer
            # matches the meta leader's refuses its entries ("Wrong index", "could not store
            # entry to WAL" in its log) and never hosts a stream created later. Seen once in 21
            # runs (docs/cluster.md, "Known limits"). Only that, read from the server's own log,
            # skips this report-only section; anything else fails the test.
            lagging = [k for k in (1, 2, 3) if stream_state(cluster.node(k), "LLPAUSE") is None]
            diverged = [k for k in lagging
                        if "could not store entry to WAL" in open(cluster.node(k).log, errors="replace").read()]
            if not lagging or diverged != lagging:
                raise
            print(f"note: {e}; nats-{diverged} logged a meta group log that no longer matches the "
                  f"leader's (nats-server 2.9): the paused stream leader report is skipped", flush=True)
            base = None
        if base is not None:
            pause_stream_leader(cluster, base)

        pids = cluster.pids()
        check(cluster.stop(), "SIGTERM stops every server")
        check(not any(pid_alive(p) for p in pids.values()), "no server left running")
        ok = True
    finally:
        cluster.stop()
        if ok:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"kept {root} for inspection", flush=True)
    print("PASS")


if __name__ == "__main__":
    main()
