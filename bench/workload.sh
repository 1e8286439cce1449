#!/usr/bin/env bash
# The national-stream workloads of issue 14, built on `loanledger gen`, each
# through `loanledger submit` (durable acks), one CLI process per bank file,
# PARALLEL at a time. Prints events/s end to end, the server's CPU seconds
# during the timed part (and events per server CPU second: steadier than
# events/s on a shared machine) and the server's RSS.
#
#   bench/workload.sh a [--scale 0.01] [--banks 0] [--parallel 4]
#       history backfill: the national portfolio 2022-2024 at SCALE, one file
#       per bank (--banks 0: the model's 160 banks), into an empty store.
#   bench/workload.sh b [--scale 0.002] [--banks 200] [--parallel 4]
#       200 banks' files of skewed sizes (about 1M events at 0.002); the time
#       includes every CLI process's start, connect and authentication.
#   bench/workload.sh c [--scale 0.21] [--banks 200] [--day 2024-12-02] [--days 1]
#                       [--parallel 4] [--report-interval-ms 10]
#       a business day's events (repayments, new loans, reclassifications in
#       every province), per bank, into a store holding the same portfolio's
#       history before that day (about 10M loans at 0.21). The store is built
#       once (loanledger-load --files, not timed) and copied for each run;
#       report queries (national and by province, alternating, at the day)
#       run during the day's load: their p50/p99 are printed.
#
# Common options: --seed N (3), --batch N (submit's default), --via load
# (submit the same files through loanledger-load --files, PARALLEL
# connections in one process, instead of one CLI process per file: the
# server's apply path without process start-up), --rate N (with --via load:
# at most N events/s over all connections, e.g. half of a full-rate run's),
# --cache DIR
# (generated files and the built store for (c); default
# /tmp/loanledger-workloads; reused when the same options come again),
# --keep (keep the run's work directory). BUILD_DIR (default build) must hold
# a Release build with loanledger, loanledgerd and loanledger-load.
# LLD_ARGS adds loanledgerd flags.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR=${BUILD_DIR:-build}
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR=$ROOT/$BUILD_DIR ;; esac
LL=$BUILD_DIR/client/loanledger
LLD=$BUILD_DIR/server/loanledgerd
LOAD=$BUILD_DIR/bench/loanledger-load

usage() { sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 1; }
[ $# -ge 1 ] || usage
WORKLOAD=$1; shift
case "$WORKLOAD" in
  a) SCALE=0.01; BANKS=0 ;;
  b) SCALE=0.002; BANKS=200 ;;
  c) SCALE=0.21; BANKS=200 ;;
  *) usage ;;
esac
SEED=3; PARALLEL=4; DAY=2024-12-02; DAYS=1; BATCH=""; REPORT_INTERVAL_MS=10
CACHE=/tmp/loanledger-workloads; KEEP=0; VIA=cli; RATE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --scale) SCALE=$2; shift 2 ;;
    --banks) BANKS=$2; shift 2 ;;
    --parallel) PARALLEL=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --day) DAY=$2; shift 2 ;;
    --days) DAYS=$2; shift 2 ;;
    --batch) BATCH=$2; shift 2 ;;
    --report-interval-ms) REPORT_INTERVAL_MS=$2; shift 2 ;;
    --cache) CACHE=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --via) VIA=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    *) echo "workload.sh: unknown option $1" >&2; usage ;;
  esac
done
for bin in "$LL" "$LLD" "$LOAD"; do
  [ -x "$bin" ] || { echo "workload.sh: $bin is missing (build it: scripts/build.sh)" >&2; exit 1; }
done
[[ "$PARALLEL" =~ ^[1-9][0-9]*$ ]] || { echo "workload.sh: bad --parallel $PARALLEL" >&2; exit 1; }
[[ "$DAYS" =~ ^[1-9][0-9]*$ ]] || { echo "workload.sh: bad --days $DAYS" >&2; exit 1; }
[[ "$VIA" =~ ^(cli|load)$ ]] || { echo "workload.sh: bad --via $VIA (cli or load)" >&2; exit 1; }
[[ "$RATE" =~ ^[0-9]+$ ]] || { echo "workload.sh: bad --rate $RATE (events per second)" >&2; exit 1; }
[ "$RATE" = 0 ] || [ "$VIA" = load ] || { echo "workload.sh: --rate needs --via load" >&2; exit 1; }

BANKS_ARGS=()
[ "$BANKS" != 0 ] && BANKS_ARGS=(--banks "$BANKS")
SUBMIT_ARGS=()
[ -n "$BATCH" ] && SUBMIT_ARGS=(--batch-size "$BATCH")
mkdir -p "$CACHE"
WORK=$(mktemp -d /tmp/loanledger-workload.XXXXXX)
PID=""; REPORTER=""
cleanup() {
  if [ -n "$REPORTER" ]; then kill -TERM "$REPORTER" 2>/dev/null || true; wait "$REPORTER" 2>/dev/null || true; fi
  if [ -n "$PID" ]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  if [ "$KEEP" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# gen_dir NAME GEN_ARGS...: per-bank files of `loanledger gen` in the cache
# (made once per set of arguments); prints the directory.
gen_dir() {
  local name=$1; shift
  local dir=$CACHE/$name
  if [ ! -f "$dir/.done" ]; then
    rm -rf "$dir"
    echo "generating $name: loanledger gen $*" >&2
    "$LL" gen --scale "$SCALE" --seed "$SEED" "${BANKS_ARGS[@]}" "$@" --out-dir "$dir" >&2
    touch "$dir/.done"
  fi
  echo "$dir"
}

events_in() {  # DIR: data lines of its CSV files
  local n=0 f
  for f in "$1"/*.csv; do n=$((n + $(wc -l < "$f") - 1)); done
  echo "$n"
}

# Tokens: one per institution (from the file names), a regulator's; the
# server's tokens file, "FILE TOKEN" jobs for xargs, "INSTITUTION TOKEN" for
# loanledger-load --files.
make_tokens() {  # DIR...
  : > "$WORK/tokens"; : > "$WORK/institution-tokens"
  local inst out f
  for inst in $(for f in "$@"; do ls "$f"; done | sed -n 's/\.csv$//p' | sort -u); do
    out=$("$LL" token new --role institution --institution "$inst" 2>/dev/null)
    echo "$inst $(sed -n 1p <<<"$out")" >> "$WORK/institution-tokens"
    sed -n 2p <<<"$out" >> "$WORK/tokens"
  done
  for role in regulator admin; do
    out=$("$LL" token new --role $role 2>/dev/null)
    sed -n 1p <<<"$out" > "$WORK/$role.token"; sed -n 2p <<<"$out" >> "$WORK/tokens"
  done
}

jobs_for() {  # DIR -> "FILE TOKEN" lines, largest file first
  local f inst
  # shellcheck disable=SC2045  # largest first; the names are B0001.csv and the like
  for f in $(ls -S "$1"/*.csv); do
    inst=$(basename "$f" .csv)
    echo "$f $(awk -v i="$inst" '$1 == i { print $2 }' "$WORK/institution-tokens")"
  done
}

start_server() {  # DATA_DIR
  rm -f "$WORK/ready"
  # shellcheck disable=SC2086
  "$LLD" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --data "$1" \
    --tokens "$WORK/tokens" --ready-file "$WORK/ready" ${LLD_ARGS:-} 2>> "$WORK/server.log" &
  PID=$!
  for _ in $(seq 1 6000); do
    [ -f "$WORK/ready" ] && break
    kill -0 "$PID" 2>/dev/null || { tail -20 "$WORK/server.log" >&2; exit 1; }
    sleep 0.05
  done
  [ -f "$WORK/ready" ] || { echo "workload.sh: the server did not start" >&2; exit 1; }
  SERVER=$(sed -n 's/^listen=//p' "$WORK/ready")
  METRICS=$(sed -n 's/^metrics=//p' "$WORK/ready")
}

# The server's own report times (loanledger_query_seconds{kind="report"}:
# from the query pool taking a report to its reply frame, lock waits
# included) as cumulative bucket counts "LE COUNT ...", to tell time spent
# in the query from time spent getting to it and back (wake-ups, queues).
report_buckets() {
  python3 -c "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen('http://$METRICS/metrics').read().decode())" |
    sed -n 's/^loanledger_query_seconds_bucket{kind="report",le="\([^"]*\)"} \([0-9.e+]*\)$/\1 \2/p' |
    tr '\n' ' '
}

stop_server() {
  kill -TERM "$PID"; wait "$PID" || true; PID=""
}

server_cpu() {  # the server's CPU seconds so far (user + system, all threads)
  awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$PID/stat"
}

rss() {  # the server's resident and peak memory
  awk '/^VmRSS|^VmHWM/ { printf "%s %d MiB  ", $1, $2 / 1024 }' "/proc/$PID/status"
}

submit_jobs() {  # JOBS_FILE: PARALLEL CLI processes at a time; fails on any rejection
  : > "$WORK/submit.err"
  xargs -P "$PARALLEL" -L 1 sh -c \
    '"$0" submit "$1" --server "'"$SERVER"'" --token "$2" '"${SUBMIT_ARGS[*]:-}"' >/dev/null 2>>"'"$WORK"'/submit.log" || echo "FAILED $1" >> "'"$WORK"'/submit.err"' \
    "$LL" < "$1"
  if [ -s "$WORK/submit.err" ]; then
    echo "workload.sh: submits failed:" >&2; head "$WORK/submit.err" >&2; tail -5 "$WORK/submit.log" >&2
    exit 2
  fi
}

timed_submit() {  # LABEL DIR
  local label=$1 dir=$2 events files start end
  events=$(events_in "$dir"); files=$(ls "$dir"/*.csv | wc -l)
  jobs_for "$dir" > "$WORK/jobs"
  local processes=$files cpu0 cpu1
  cpu0=$(server_cpu)
  start=$(date +%s.%N)
  if [ "$VIA" = load ]; then
    processes=1
    "$LOAD" --server "$SERVER" --tokens "$WORK/institution-tokens" --files "$dir" \
      --connections "$PARALLEL" ${BATCH:+--batch "$BATCH"} --rate "$RATE" > "$WORK/load.out"
  else
    submit_jobs "$WORK/jobs"
  fi
  end=$(date +%s.%N)
  cpu1=$(server_cpu)
  python3 -c "
s = $end - $start
c = $cpu1 - $cpu0
print(f'$label: events=$events files=$files via=$VIA processes=$processes parallel=$PARALLEL seconds={s:.2f} events_per_s={$events / s:.0f} server_cpu_s={c:.2f} events_per_server_cpu_s={$events / max(c, 0.01):.0f}')"
}

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); commit $(git rev-parse --short HEAD 2>/dev/null || echo ?)"
BANKS_NAME=${BANKS/#0/model}
case "$WORKLOAD" in
  a|b)
    DIR=$(gen_dir "history-$SCALE-$SEED-$BANKS_NAME")
    make_tokens "$DIR"
    start_server "$WORK/data"
    timed_submit "workload $WORKLOAD (scale $SCALE, banks $BANKS_NAME)" "$DIR"
    echo "server: $(rss)"
    stop_server
    ;;
  c)
    FIRST=$DAY
    STORE=$CACHE/store-$SCALE-$SEED-$BANKS_NAME-before-$FIRST
    HISTORY=$(gen_dir "history-$SCALE-$SEED-$BANKS_NAME-before-$FIRST" --before "$FIRST")
    DAY_DIRS=()
    d=$FIRST
    for _ in $(seq 1 "$DAYS"); do
      DAY_DIRS+=("$(gen_dir "day-$SCALE-$SEED-$BANKS_NAME-$d" --day "$d")")
      d=$(date -u -d "$d + 1 day" +%F)
    done
    make_tokens "$HISTORY" "${DAY_DIRS[@]}"
    if [ ! -f "$STORE/.done" ]; then
      rm -rf "$STORE"
      echo "building the store: $(events_in "$HISTORY") events before $FIRST (not timed)" >&2
      start_server "$STORE/data"
      "$LOAD" --server "$SERVER" --tokens "$WORK/institution-tokens" --files "$HISTORY" \
        --connections "$PARALLEL" >&2
      stop_server
      touch "$STORE/.done"
    fi
    cp -a --reflink=auto "$STORE/data" "$WORK/data"
    start_server "$WORK/data"
    echo "store: $("$LL" admin stats --server "$SERVER" --token "$(cat "$WORK/admin.token")" 2>/dev/null |
      sed -n 's/^loans /loans=/p' | head -1) server after open: $(rss)"
    "$LOAD" --server "$SERVER" --reports-only --both-reports --report-date "$FIRST" \
      --regulator-token "$(cat "$WORK/regulator.token")" \
      --report-interval-ms "$REPORT_INTERVAL_MS" > "$WORK/reports" 2>&1 &
    REPORTER=$!
    sleep 0.5  # connected; SIGUSR1 drops the queries before the load
    kill -USR1 "$REPORTER"
    BUCKETS0=$(report_buckets)
    for dir in "${DAY_DIRS[@]}"; do
      timed_submit "workload c ($(basename "$dir"), store of scale $SCALE)" "$dir"
    done
    kill -TERM "$REPORTER"; wait "$REPORTER" || true; REPORTER=""
    sed 's/^/reports during the load: /' "$WORK/reports"
    python3 -c "
import sys
a = sys.argv[1].split(); b = sys.argv[2].split()
before = dict(zip(a[0::2], map(float, a[1::2]))); after = dict(zip(b[0::2], map(float, b[1::2])))
total = after['+Inf'] - before.get('+Inf', 0)
if total > 0:
    share = ['<= %g ms %.1f%%' % (float(le) * 1e3, 100 * (after[le] - before.get(le, 0)) / total)
             for le in b[0::2] if le != '+Inf' and float(le) <= 0.01]
    print('server-side report time during the load (%d reports, loanledger_query_seconds): %s'
          % (total, ', '.join(share)))
" "$BUCKETS0" "$(report_buckets)"
    echo "server: $(rss)"
    stop_server
    ;;
esac
