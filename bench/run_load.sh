#!/usr/bin/env bash
# Starts loanledgerd on 127.0.0.1 (free ports, fresh data dir and tokens),
# runs loanledger-load against it, prints the figures, stops the server by
# PID. Arguments after the script go to loanledger-load, e.g.
#   bench/run_load.sh --connections 2 --events 2000000 --batch 10000
# BUILD_DIR (default build) must hold a Release build; DATA_DIR (default a
# temp dir) keeps the store; LLD_ARGS adds loanledgerd flags (e.g.
# "--io-threads 4"); SERVER_LOG names a file that gets the server's log.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
LL=$BUILD_DIR/client/loanledger
LLD=$BUILD_DIR/server/loanledgerd
LOAD=$BUILD_DIR/bench/loanledger-load
WORK=$(mktemp -d /tmp/loanledger-load.XXXXXX)
DATA_DIR=${DATA_DIR:-$WORK/data}
trap 'if [ -n "${PID:-}" ]; then kill -TERM "$PID" 2>/dev/null; wait "$PID" 2>/dev/null || true; fi; if [ -n "${SERVER_LOG:-}" ]; then cp "$WORK/server.log" "$SERVER_LOG"; fi; rm -rf "$WORK"' EXIT

: > "$WORK/tokens"; : > "$WORK/institution-tokens"
for i in $(seq -w 1 16); do
  out=$("$LL" token new --role institution --institution "LOAD$i" 2>/dev/null)
  sed -n 1p <<<"$out" >> "$WORK/institution-tokens"
  sed -n 2p <<<"$out" >> "$WORK/tokens"
done
out=$("$LL" token new --role regulator 2>/dev/null)
REGULATOR=$(sed -n 1p <<<"$out"); sed -n 2p <<<"$out" >> "$WORK/tokens"

"$LLD" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --data "$DATA_DIR" --tokens "$WORK/tokens" ${LLD_ARGS:-} \
  2> "$WORK/server.log" &
PID=$!
for _ in $(seq 1 200); do
  grep -q "listening on" "$WORK/server.log" && break
  sleep 0.05
done
PORT=$(grep -o "listening on [0-9.]*:[0-9]*" "$WORK/server.log" | head -1 | sed 's/.*://')
"$LOAD" --server "127.0.0.1:$PORT" --tokens "$WORK/institution-tokens" --regulator-token "$REGULATOR" "$@"
