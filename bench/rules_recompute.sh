#!/usr/bin/env bash
# Recompute time of a rules change (issue 16; bench/RESULTS.md "recompute of every figure").
# A fresh loanledgerd on 127.0.0.1 (port 0, addresses from its --ready-file), N loans preloaded as
# bench/scaling.sh does (loanledger-load: 2 connections, one DISBURSE per loan, batches of 10,000),
# stopped and restarted; then `loanledger admin rules apply rules/policy-2025.json` and
# `admin rules apply rules/default.json` are timed (each recomputes every figure from the whole
# journal), with the server's peak RSS and its loanledger_rules_* metrics.
#   bench/rules_recompute.sh                 # N=10000000 (~1.5 GB of disk, ~2.3 GiB RSS peak)
#   N=1000000 BUILD_DIR=build bench/rules_recompute.sh
#   KEEP=DIR bench/rules_recompute.sh        # keep the store in DIR (reused when it exists)
# BUILD_DIR (default build) must hold a Release build with bench/loanledger-load.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR=${BUILD_DIR:-build}
N=${N:-10000000}
LL=$BUILD_DIR/client/loanledger
LLD=$BUILD_DIR/server/loanledgerd
LOAD=$BUILD_DIR/bench/loanledger-load
WORK=$(mktemp -d /tmp/loanledger-rules-bench.XXXXXX)
DATA=${KEEP:-$WORK/data}
PID=""
trap 'if [ -n "$PID" ]; then kill -TERM "$PID" 2>/dev/null; wait "$PID" 2>/dev/null || true; fi; rm -rf "$WORK"' EXIT

: > "$WORK/tokens"; : > "$WORK/institution-tokens"
for i in 1 2; do
  out=$("$LL" token new --role institution --institution "SCALE$i" 2>/dev/null)
  sed -n 1p <<<"$out" >> "$WORK/institution-tokens"; sed -n 2p <<<"$out" >> "$WORK/tokens"
done
out=$("$LL" token new --role admin 2>/dev/null)
ADMIN=$(sed -n 1p <<<"$out"); sed -n 2p <<<"$out" >> "$WORK/tokens"

start_server() {  # sets PID, ADDR, METRICS
  rm -f "$WORK/ready"
  "$LLD" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --data "$DATA" --tokens "$WORK/tokens" \
    --ready-file "$WORK/ready" > /dev/null 2>> "$WORK/server.log" &
  PID=$!
  until grep -q "^pid=$PID$" "$WORK/ready" 2>/dev/null; do
    kill -0 "$PID" 2>/dev/null || { tail -20 "$WORK/server.log" >&2; exit 1; }
    sleep 0.1
  done
  ADDR=$(sed -n 's/^listen=//p' "$WORK/ready")
  METRICS=$(sed -n 's/^metrics=//p' "$WORK/ready")
}
stop_server() { kill -TERM "$PID"; wait "$PID" 2>/dev/null || true; PID=""; }
rss_mib() { awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$PID/status" 2>/dev/null || echo 0; }

if [ ! -e "$DATA/CURRENT" ]; then
  start_server
  t0=$(date +%s.%N)
  "$LOAD" --server "$ADDR" --tokens "$WORK/institution-tokens" --connections 2 \
    --loans-per-connection $((N / 2)) --events "$N" --report-interval-ms 0 | grep events_per_s
  echo "preload of $N loans: $(echo "$(date +%s.%N) - $t0" | bc) s"
  stop_server
else
  echo "reusing the store in $DATA (tokens are new: the rules are applied with a new admin token)"
fi
start_server
echo "loans: $("$LL" admin stats --server "$ADDR" --token "$ADMIN" | sed -n 's/^loans //p'), RSS $(rss_mib) MiB, load $(cut -d' ' -f1-3 /proc/loadavg)"
for f in policy-2025 default; do
  peak=0
  "$LL" admin rules apply "$ROOT/rules/$f.json" --server "$ADDR" --token "$ADMIN" > "$WORK/apply.out" &
  cli=$!
  t0=$(date +%s.%N)
  while kill -0 "$cli" 2>/dev/null; do
    r=$(rss_mib); [ "$r" -gt "$peak" ] && peak=$r
    sleep 0.2
  done
  wait "$cli"
  wall=$(echo "$(date +%s.%N) - $t0" | bc)
  sleep 1.5  # one metrics refresh
  last=$(curl -s "http://$METRICS/metrics" | sed -n 's/^loanledger_rules_recompute_last_duration_seconds //p')
  echo "apply $f: $(cat "$WORK/apply.out"); CLI ${wall} s, recompute ${last:-?} s, peak RSS ${peak} MiB, load $(cut -d' ' -f1-3 /proc/loadavg)"
done
stop_server
