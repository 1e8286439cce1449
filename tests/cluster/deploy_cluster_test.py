#!/usr/bin/env python3
"""deploy/cluster/ against real tools: every nats-server configuration parses
(`nats-server -t`); the three per-machine templates, with their addresses
moved to 127.0.0.1 (route ports picked, others kernel-chosen) and a temporary
store, form one JetStream cluster of 3; `systemd-analyze verify` accepts both
units (their binaries swapped for /bin/sleep; skipped without systemd-analyze).

usage: deploy_cluster_test.py
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
DEPLOY = os.path.join(ROOT, "deploy", "cluster")
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
from nats_cluster import START_ATTEMPTS, NatsCluster, _pick_port  # noqa: E402

NATS_SERVER = os.environ.get("NATS_SERVER", "nats-server")


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok:", what, flush=True)


def localize(template, k, route_ports, node):
    """A machine template with 127.0.0.1 addresses and node's directories."""
    text = re.sub(r'listen: "10\.0\.0\.1\d:4222"', 'listen: "127.0.0.1:-1"', template)
    text = re.sub(r'"10\.0\.0\.1\d:6222"', f'"127.0.0.1:{route_ports[k]}"', text)
    text = re.sub(r"nats-route://10\.0\.0\.1(\d):6222",
                  lambda m: f"nats-route://127.0.0.1:{route_ports[int(m.group(1))]}", text)
    text = text.replace('http: "127.0.0.1:8222"', 'http: "127.0.0.1:-1"')
    text = text.replace('store_dir: "/var/lib/nats"', f'store_dir: "{node.store_dir}"')
    code = "\n".join(line.split("#")[0] for line in text.splitlines())
    assert "10.0.0." not in code and "/var/lib" not in code, text
    return text + f'\nports_file_dir: "{node.dir}"\n'


def main():
    confs = sorted(f for f in os.listdir(os.path.join(DEPLOY, "nats")) if f.endswith(".conf"))
    check(confs == ["compose.conf", "nats-1.conf", "nats-2.conf", "nats-3.conf"], f"configs: {confs}")
    for name in confs:
        r = subprocess.run([NATS_SERVER, "-t", "-c", os.path.join(DEPLOY, "nats", name)],
                           capture_output=True, text=True, env=dict(os.environ, NATS_SERVER_NAME="nats-1"))
        check(r.returncode == 0, f"nats-server -t {name}: {(r.stdout + r.stderr).strip()}")
        text = open(os.path.join(DEPLOY, "nats", name)).read()
        check("max_payload: 16777216" in text and 'name: "loanledger"' in text,
              f"{name}: max_payload 16 MiB, cluster loanledger")

    root = tempfile.mkdtemp(prefix="ll-deploy-cluster-")
    cluster = NatsCluster(root)
    try:
        for attempt in range(1, START_ATTEMPTS + 1):
            route_ports = {k: _pick_port() for k in (1, 2, 3)}
            for k, node in cluster.nodes.items():
                template = open(os.path.join(DEPLOY, "nats", f"nats-{k}.conf")).read()
                os.makedirs(node.dir, exist_ok=True)
                with open(node.conf, "w") as f:
                    f.write(localize(template, k, route_ports, node))
                node.spawn()
            failures = {k: n.wait_listening() for k, n in cluster.nodes.items()}
            failures = {k: v for k, v in failures.items() if v}
            if not failures:
                break
            cluster.stop()
            if attempt == START_ATTEMPTS or any(not v.startswith("in-use:") for v in failures.values()):
                raise AssertionError(f"templates did not start: {failures}")
        leader = cluster.wait_formed()
        check(all(v == (leader, 3) for v in cluster.meta_views().values()),
              f"the three machine templates form one JetStream cluster of 3 (leader {leader})")
        check(cluster.stop(), "stopped by SIGTERM")
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)

    tool = shutil.which("systemd-analyze")
    if not tool:
        print("SKIP (units): systemd-analyze not installed")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            for unit in ("nats-server.service", "loanledgerd.service"):
                text = open(os.path.join(DEPLOY, "systemd", unit)).read()
                text = text.replace("/usr/local/bin/loanledgerd", "/bin/sleep").replace(
                    "/usr/sbin/nats-server", "/bin/sleep")
                path = os.path.join(tmp, unit)
                with open(path, "w") as f:
                    f.write(text)
                r = subprocess.run([tool, "verify", path], capture_output=True, text=True)
                out = (r.stdout + r.stderr).strip()
                check(r.returncode == 0 and not out, f"systemd-analyze verify {unit} {out}")
    env_example = open(os.path.join(DEPLOY, "systemd", "cluster.env.example")).read()
    unit = open(os.path.join(DEPLOY, "systemd", "loanledgerd.service")).read()
    used = set(re.findall(r"\$\{(\w+)\}", unit))
    defined = set(re.findall(r"^(\w+)=", env_example, re.M))
    check(used and used == defined, f"cluster.env.example defines exactly the unit's variables {sorted(used)}")
    print("PASS")


if __name__ == "__main__":
    main()
