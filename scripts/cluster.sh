#!/usr/bin/env bash
# A local loanledger cluster on 127.0.0.1 for tests and demos (deploy/README.md,
# "Cluster: three machines"):
#   scripts/cluster.sh up DIR [--tokens FILE] [--partitions P] [--replicas R] [--partition-map FILE] [--http]
#   scripts/cluster.sh down DIR
# `up` starts 3 nats-server (one JetStream cluster) and P x R loanledgerd
# (R = loanledgerd replicas per partition, default 3; P default 1, fixed when
# DIR is created) and returns once all serve; then `. DIR/cluster.env` sets
# LOANLEDGER_SERVER (every client address), NATS_URLS and METRICS. Pid files:
# DIR/pids/nats-K.pid (K = 1..3), DIR/pids/ll-P-R.pid (P from 0, R from 1).
# Without --tokens, fresh tokens go to DIR/tokens, DIR/admin.token and
# DIR/regulator.token. With --http every node also serves the HTTP API and the
# regulator console (HTTP in cluster.env). `up` on a DIR holding a stopped or killed cluster starts
# what is not running, on its data and (if still free) its earlier ports.
# `down` sends SIGTERM by pid file, waits (LOANLEDGER_STOP_WAIT_S, default 60),
# then SIGKILL with a warning.
#
# Environment: LOANLEDGER_BIN_DIR  a build directory (BIN_DIR/server/loanledgerd,
#   BIN_DIR/client/loanledger) or a directory holding both; default build/.
#   NATS_SERVER  the nats-server binary (default: nats-server on PATH).
#   LOANLEDGER_CLUSTER_WAIT_S  how long `up` waits for every node (default 120).
# The implementation, shared with the tests, is tests/support/local_cluster.py.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
exec python3 "$ROOT/tests/support/local_cluster.py" "$@"
