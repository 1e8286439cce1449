#!/usr/bin/env python3
"""The quick start on a local national cluster (README: `scripts/quickstart.sh --partitions P
--replicas R`), at a small scale.

Runs scripts/quickstart.sh --partitions 2 --replicas 2 with already-built binaries and a
temporary home: 3 nats-server and 2 x 2 loanledgerd on 127.0.0.1 (ports chosen at run time,
scripts/cluster.sh up --http), every bank's file through the CLI given every node, the report.
Then checks:
- the 2024-09-30 report against docs/domain.md (as the single-node quick start test does), and
  that it is a sum over both partitions (`stream_positions`: one position per partition, each
  partition holding batches);
- every node's HTTP API gives the CLI's report, and the console URL printed is served;
- by province through the CLI (every node listed), Shanghai's three categories grow >= 10%;
- after `scripts/cluster.sh down`, every node's store passes `loanledgerd --verify`;
- a bad --partitions is refused with exit 1 before anything is installed or started.
Every process is stopped by its pid file (scripts/cluster.sh down) whatever happens.

usage: quickstart_cluster_test.py BUILD_DIR [SCALE]
"""
import glob
import json
import os
import subprocess
import sys
import tempfile
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from local_cluster import LocalCluster  # noqa: E402
from quickstart_test import check_national, check_shanghai  # noqa: E402

PARTITIONS, REPLICAS = 2, 2


def read_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            if "=" in line and not line.startswith(("#", "export")):
                k, v = line.strip().split("=", 1)
                env[k] = v
    return env


def main():
    build = os.path.abspath(sys.argv[1])
    scale = float(sys.argv[2]) if len(sys.argv) > 2 else 2e-5
    quickstart = os.path.join(ROOT, "scripts", "quickstart.sh")
    failures = []
    with tempfile.TemporaryDirectory(prefix="ll-quickstart-cluster-") as home:
        env = dict(os.environ, LOANLEDGER_HOME=home, LOANLEDGER_BIN_DIR=build,
                   LOANLEDGER_SCALE=repr(scale), LOANLEDGER_SEED="7")
        cluster_dir = os.path.join(home, "cluster")
        bad = subprocess.run(["bash", quickstart, "--partitions", "0"], env=env, capture_output=True,
                             text=True, timeout=60)
        if bad.returncode != 1 or "--partitions" not in bad.stderr or os.path.exists(cluster_dir):
            failures.append(f"--partitions 0: exit {bad.returncode}, stderr {bad.stderr.strip()!r}")
        try:
            run = subprocess.run(["bash", quickstart, "--partitions", str(PARTITIONS), "--replicas",
                                  str(REPLICAS)], env=env, capture_output=True, text=True, timeout=600)
            print(run.stdout)
            if run.returncode != 0:
                print(run.stderr, file=sys.stderr)
                print(f"FAIL: quickstart --partitions {PARTITIONS} --replicas {REPLICAS} exited "
                      f"{run.returncode}")
                return 1
            addresses = read_env(os.path.join(cluster_dir, "cluster.env"))
            servers = addresses["LOANLEDGER_SERVER"].split(",")
            https = addresses.get("HTTP", "").split(",")
            if len(servers) != PARTITIONS * REPLICAS or len(https) != len(servers) or not all(https):
                failures.append(f"cluster.env names {len(servers)} nodes and HTTP {https}")
            report = json.load(open(os.path.join(home, "report.json")))
            failures += check_national(report, scale)
            positions = report.get("stream_positions")
            if not isinstance(positions, list) or len(positions) != PARTITIONS or \
                    not all(p > 0 for p in positions):
                failures.append(f"stream_positions {positions}: not a sum over {PARTITIONS} "
                                f"partitions each holding batches")
            token = open(os.path.join(home, "regulator.token")).read().strip()
            if f"http://{https[0]}/#token={token}&date=2024-09-30" not in run.stderr:
                failures.append(f"quickstart printed no console URL for {https[0]}")
            page = urllib.request.urlopen(f"http://{https[0]}/", timeout=10).read().decode()
            if "<html" not in page.lower():
                failures.append("GET / is not the console page")
            for http in https:
                req = urllib.request.Request(f"http://{http}/v1/report?date=2024-09-30",
                                             headers={"Authorization": f"Bearer {token}"})
                got = json.loads(urllib.request.urlopen(req, timeout=30).read())
                if got["rows"] != report["rows"]:
                    failures.append(f"GET /v1/report of {http} differs from the CLI's report.json")
            out = subprocess.run([os.path.join(build, "client/loanledger"), "report", "--date",
                                  "2024-09-30", "--by", "province", "--format", "json",
                                  "--server", ",".join(servers), "--token", token],
                                 capture_output=True, text=True, timeout=60, check=True).stdout
            failures += check_shanghai(json.loads(out)["rows"])
        finally:
            if os.path.isdir(cluster_dir):
                if not LocalCluster(cluster_dir, bin_dir=build).down():
                    failures.append("scripts/cluster.sh down needed SIGKILL")
        datas = sorted(glob.glob(os.path.join(cluster_dir, "ll-*", "data")))
        if len(datas) != PARTITIONS * REPLICAS:
            failures.append(f"{len(datas)} node stores, not {PARTITIONS * REPLICAS}")
        for data in datas:
            verify = subprocess.run([os.path.join(build, "server/loanledgerd"), "--verify", "--data", data],
                                    capture_output=True, text=True, timeout=300)
            if verify.returncode != 0:
                failures.append(f"--verify of {data} exited {verify.returncode}: {verify.stdout}{verify.stderr}")
            else:
                print(f"{os.path.basename(os.path.dirname(data))}: {verify.stdout.strip()}")
    for f in failures:
        print("FAIL:", f)
    print(f"quickstart cluster: {'FAILED' if failures else 'passed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
