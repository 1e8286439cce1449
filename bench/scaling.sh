#!/usr/bin/env bash
# The scaling table of bench/RESULTS.md in one command (issue: performance).
# For each store size N (loans): a fresh loanledgerd on 127.0.0.1, preload N
# loans (one DISBURSE each, through the protocol, durable acks), note the
# server's RSS, stop it (timed: a clean stop writes a loan snapshot),
# restart it and time restart-to-serving, then measure
# end-to-end events/s with a report query every 20 ms (all categories), and
# again with reports by province; then kill -9 it (crash_tail: the events
# applied since the newest loan snapshot began, which the next start
# replays) and time the restart after the crash.
#   bench/scaling.sh                 # sizes 1000000 10000000 50000000 (~7 min, ~12 GB of disk)
#   SIZES="1000000" EVENTS=2000000 bench/scaling.sh
# BUILD_DIR (default build) must hold a Release build (scripts/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
SIZES=${SIZES:-"1000000 10000000 50000000"}
EVENTS=${EVENTS:-2000000}          # measured events per size
LL=$BUILD_DIR/client/loanledger
LLD=$BUILD_DIR/server/loanledgerd
LOAD=$BUILD_DIR/bench/loanledger-load
WORK=$(mktemp -d /tmp/loanledger-scaling.XXXXXX)
PID=""
trap 'if [ -n "$PID" ]; then kill -TERM "$PID" 2>/dev/null; wait "$PID" 2>/dev/null || true; fi; rm -rf "$WORK"' EXIT

: > "$WORK/tokens"; : > "$WORK/institution-tokens"
for i in 1 2; do
  out=$("$LL" token new --role institution --institution "SCALE$i" 2>/dev/null)
  sed -n 1p <<<"$out" >> "$WORK/institution-tokens"; sed -n 2p <<<"$out" >> "$WORK/tokens"
done
out=$("$LL" token new --role regulator 2>/dev/null)
REGULATOR=$(sed -n 1p <<<"$out"); sed -n 2p <<<"$out" >> "$WORK/tokens"

start_server() {  # $1 data dir; sets PID, PORT and STARTUP_S (seconds to "listening on")
  local t0; t0=$(date +%s.%N)
  rm -f "$WORK/server.log"  # else the wait below may see the previous server's line
  "$LLD" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --data "$1" --tokens "$WORK/tokens" \
    > /dev/null 2> "$WORK/server.log" &
  PID=$!
  until grep -q "listening on" "$WORK/server.log" 2>/dev/null; do
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
    sleep 0.02
  done
  PORT=$(grep -o "listening on [0-9.]*:[0-9]*" "$WORK/server.log" | head -1 | sed 's/.*://')
  METRICS_PORT=$(grep -o "metrics on [0-9.]*:[0-9]*" "$WORK/server.log" | head -1 | sed 's/.*://')
  STARTUP_S=$(echo "$(date +%s.%N) - $t0" | bc)
}
stop_server() {  # sets STOP_S (seconds from SIGTERM to exit: the final loan snapshot)
  local t0; t0=$(date +%s.%N)
  kill -TERM "$PID"; wait "$PID" 2>/dev/null || true; PID=""
  STOP_S=$(echo "$(date +%s.%N) - $t0" | bc)
}
rss_mib() { awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$PID/status"; }

printf '%-10s %-12s %-9s %-7s %-9s %-10s %-12s %-16s %-14s %-14s %-11s %-9s\n' loans preload_ev/s rss_MiB stop_s restart_s rss2_MiB events/s ack_p50/p99_ms report_p50/p99 by_prov_p50/p99 crash_tail crash_restart_s
for N in $SIZES; do
  half=$((N / 2))
  data=$WORK/data-$N
  start_server "$data"
  pre=$("$LOAD" --server "127.0.0.1:$PORT" --tokens "$WORK/institution-tokens" --connections 2 \
        --loans-per-connection "$half" --events "$N" --report-interval-ms 0)
  pre_rate=$(grep -o "events_per_s=[0-9]*" <<<"$pre" | cut -d= -f2)
  rss=$(rss_mib)
  stop_server
  stop_s=$STOP_S
  start_server "$data"
  restart=$STARTUP_S
  rss2=$(rss_mib)
  run=$("$LOAD" --server "127.0.0.1:$PORT" --tokens "$WORK/institution-tokens" --connections 2 \
        --loans-per-connection "$half" --skip-per-connection "$half" --events "$EVENTS" \
        --regulator-token "$REGULATOR" --report-interval-ms 20)
  rate=$(grep -o "events_per_s=[0-9]*" <<<"$run" | cut -d= -f2)
  ack=$(grep -o "p50=[0-9.]* p99=[0-9.]*" <<<"$(grep ack_latency <<<"$run")" | sed 's/p50=//; s/ p99=/\//')
  rep=$(grep -o "p50=[0-9.]* p99=[0-9.]*" <<<"$(grep report_latency <<<"$run")" | sed 's/p50=//; s/ p99=/\//')
  run2=$("$LOAD" --server "127.0.0.1:$PORT" --tokens "$WORK/institution-tokens" --connections 2 \
        --loans-per-connection "$half" --skip-per-connection "$((half + EVENTS / 2))" --events "$((EVENTS / 2))" \
        --regulator-token "$REGULATOR" --report-interval-ms 20 --by-province)
  prov=$(grep -o "p50=[0-9.]* p99=[0-9.]*" <<<"$(grep report_latency <<<"$run2")" | sed 's/p50=//; s/ p99=/\//')
  # A crash now: the journal since the newest loan snapshot began is what the next start replays.
  tail_events=$(curl -s "http://127.0.0.1:$METRICS_PORT/metrics" |
                awk '/^loanledger_ledger_events_since_snapshot / { printf "%.0f", $2 }')
  kill -KILL "$PID"; wait "$PID" 2>/dev/null || true; PID=""
  start_server "$data"
  crash_restart=$STARTUP_S
  stop_server
  printf '%-10s %-12s %-9s %-7.2f %-9.2f %-10s %-12s %-16s %-14s %-14s %-11s %-9.2f\n' "$N" "$pre_rate" "$rss" "$stop_s" "$restart" "$rss2" "$rate" "$ack" "$rep" "$prov" "$tail_events" "$crash_restart"
  rm -rf "$data"
done
