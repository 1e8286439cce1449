#!/usr/bin/env bash
# Single node vs one partition x 3 replicas (docs/cluster.md), or any
# partitions x replicas (SETUPS), side by side in one run, on the generator's national portfolio submitted through the
# CLI, one file per bank, PARALLEL `loanledger submit` at a time:
#   events/s, the servers' ack latency p50/p99 (loanledger_ack_latency_seconds
#   of the node that acknowledged), and for the cluster the largest follower
#   lag seen (each node's lag gauge, sampled every LAG_SAMPLE_S) and the
#   state digests.
#   bench/cluster_bench.sh                     # SCALE=0.0002 SEED=3 PARALLEL=4 ROUNDS=2
# SETUPS="PxR ..." lists the clusters to run after the single node in each
# round (default "1x3"; e.g. SETUPS="1x1 2x1 3x1" for issue 13's P = 1, 2, 3).
# BATCH=N passes --batch-size N to every submit (default: submit's own), so that
# the server's groups hold several batches.
# BUILD_DIR (default build; relative to the project or absolute) must hold a
# Release build; the cluster runs its binaries too. Both setups get the
# same files; rounds alternate single, cluster, single, cluster...
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR=${BUILD_DIR:-build}
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR=$ROOT/$BUILD_DIR ;; esac
LL=$BUILD_DIR/client/loanledger
LLD=$BUILD_DIR/server/loanledgerd
# scripts/cluster.sh starts the cluster's loanledgerd from the same build
# (without this it took build/, whatever that held).
export LOANLEDGER_BIN_DIR=$BUILD_DIR
SCALE=${SCALE:-0.0002}
SEED=${SEED:-3}
PARALLEL=${PARALLEL:-4}
ROUNDS=${ROUNDS:-2}
BATCH=${BATCH:-}
SETUPS=${SETUPS:-1x3}
# LAG_SAMPLE_S: how often the follower lag is sampled during a cluster run
# (each node's loanledger_cluster_replication_lag_events gauge, read over
# HTTP by one python3 process, on the same cores as the cluster); 0 = not
# sampled.
LAG_SAMPLE_S=${LAG_SAMPLE_S:-1}
for setup in $SETUPS; do
  [[ "$setup" =~ ^[1-9][0-9]*x[1-9][0-9]*$ ]] || { echo "cluster_bench.sh: bad setup $setup in SETUPS (want PxR)" >&2; exit 1; }
done
WORK=$(mktemp -d /tmp/loanledger-cluster-bench.XXXXXX)
PID=""
cleanup() {
  if [ -n "$PID" ]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  [ -d "$WORK/cluster" ] && scripts/cluster.sh down "$WORK/cluster" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "generating the portfolio (scale $SCALE, seed $SEED)" >&2
"$LL" gen --scale "$SCALE" --seed "$SEED" --out "$WORK/portfolio.csv" 2>/dev/null
mkdir -p "$WORK/csv"
awk -F, -v dir="$WORK/csv" 'NR == 1 { header = $0; next }
  { f = dir "/" $1 ".csv"; if (!(f in seen)) { print header > f; seen[f] = 1 } print > f }' \
  "$WORK/portfolio.csv"
EVENTS=$(($(wc -l < "$WORK/portfolio.csv") - 1))
: > "$WORK/tokens"; : > "$WORK/jobs"
for f in "$WORK"/csv/*.csv; do
  inst=$(basename "$f" .csv)
  out=$("$LL" token new --role institution --institution "$inst" 2>/dev/null)
  echo "$f $(sed -n 1p <<<"$out")" >> "$WORK/jobs"
  sed -n 2p <<<"$out" >> "$WORK/tokens"
done
for role in admin regulator; do
  out=$("$LL" token new --role $role 2>/dev/null)
  sed -n 1p <<<"$out" > "$WORK/$role.token"; sed -n 2p <<<"$out" >> "$WORK/tokens"
done
BANKS=$(wc -l < "$WORK/jobs")
echo "$EVENTS events, $BANKS banks' files" >&2

# p50 and p99 from a Prometheus histogram's cumulative buckets (upper bounds).
quantiles() {  # METRICS_ADDRESS
  python3 - "$1" <<'EOF'
import sys, urllib.request
text = urllib.request.urlopen(f"http://{sys.argv[1]}/metrics", timeout=5).read().decode()
b = []
for line in text.splitlines():
    if line.startswith("loanledger_ack_latency_seconds_bucket"):
        le = line.split('le="')[1].split('"')[0]
        b.append((float("inf") if le == "+Inf" else float(le), float(line.split()[-1])))
b.sort()
n = b[-1][1] if b else 0
def q(p):
    for le, c in b:
        if n and c >= p * n: return f"{le * 1000:g}"
    return "-"
s = [float(l.split()[-1]) for l in text.splitlines() if l.startswith("loanledger_ack_latency_seconds_sum")]
mean = f"{s[0] / n * 1000:.1f}" if n and s else "-"
print(f"ack_p50_le_ms={q(0.5)} ack_p99_le_ms={q(0.99)} ack_mean_ms={mean} acks={n:g}")
EOF
}

submit_all() {  # SERVERS
  local servers=$1 start end
  start=$(date +%s.%N)
  xargs -P "$PARALLEL" -L 1 sh -c \
    '"$0" submit "$1" --server "'"$servers"'" --token "$2" '"${BATCH:+--batch-size $BATCH}"' >/dev/null 2>&1 || echo "FAILED $1" >> "'"$WORK"'/submit.err"' \
    "$LL" < "$WORK/jobs"
  end=$(date +%s.%N)
  python3 -c "print(f'{$EVENTS / ($end - $start):.0f} events/s in {$end - $start:.2f} s')"
}

single() {  # ROUND
  local dir=$WORK/single-$1
  mkdir -p "$dir"
  "$LLD" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --data "$dir/data" \
    --tokens "$WORK/tokens" --ready-file "$dir/ready" 2> "$dir/log" &
  PID=$!
  for _ in $(seq 1 200); do [ -f "$dir/ready" ] && break; sleep 0.05; done
  local listen metrics
  listen=$(sed -n 's/^listen=//p' "$dir/ready"); metrics=$(sed -n 's/^metrics=//p' "$dir/ready")
  echo "single node   round $1: $(submit_all "$listen") $(quantiles "$metrics")"
  "$LL" report --date 2024-09-30 --by province --format csv --server "$listen" \
    --token "$(cat "$WORK/regulator.token")" > "$WORK/single.report"
  kill -TERM "$PID"; wait "$PID" || true; PID=""
  rm -rf "$dir"
}

metrics_text() {  # METRICS_ADDRESS
  python3 -c "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen('http://$1/metrics', timeout=5).read().decode())" 2>/dev/null || true
}

cluster() {  # ROUND PARTITIONS REPLICAS
  local dir=$WORK/cluster partitions=$2 replicas=$3
  rm -rf "$dir"
  scripts/cluster.sh up "$dir" --tokens "$WORK/tokens" --partitions "$partitions" \
    --replicas "$replicas" >/dev/null
  # shellcheck disable=SC1091
  . "$dir/cluster.env"
  local admin maxlag=0 a result
  admin=$(cat "$WORK/admin.token")
  local sampler=""
  : > "$WORK/lag"
  if [ "$LAG_SAMPLE_S" != 0 ]; then
    # One process for the whole run, reading each node's gauge over HTTP:
    # the CLI processes it replaced (three a second) cost the cluster run a
    # few per cent of the 2 cores.
    python3 - "$LAG_SAMPLE_S" ${METRICS//,/ } > "$WORK/lag" <<'PY' &
import sys, time, urllib.request
period, addresses = float(sys.argv[1]), sys.argv[2:]
while True:
    for a in addresses:
        try:
            text = urllib.request.urlopen(f"http://{a}/metrics", timeout=5).read().decode()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("loanledger_cluster_replication_lag_events"):
                print(line.rsplit(" ", 1)[1], flush=True)
    time.sleep(period)
PY
    sampler=$!
  fi
  result=$(submit_all "$LOANLEDGER_SERVER")
  if [ -n "$sampler" ]; then kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true; fi
  sleep 1.5  # one metrics refresh
  maxlag=$(sort -n "$WORK/lag" | tail -1)
  echo "$partitions x $replicas cluster round $1: $result max_follower_lag_batches=${maxlag:-not sampled}"
  local p
  for p in $(seq 0 $((partitions - 1))); do  # each partition's leader's acks
    for a in ${METRICS//,/ }; do
      if metrics_text "$a" | grep -q "^loanledger_cluster_is_leader{partition=\"$p\"} 1"; then
        echo "  partition $p leader: $(quantiles "$a")"
      fi
    done
  done
  for a in ${LOANLEDGER_SERVER//,/ }; do
    "$LL" admin stats --server "$a" --token "$admin" | sed -n 's/^state_digest /  digest /p'
  done
  "$LL" report --date 2024-09-30 --by province --format csv --server "$LOANLEDGER_SERVER" \
    --token "$(cat "$WORK/regulator.token")" > "$WORK/cluster.report"
  if cmp -s "$WORK/single.report" "$WORK/cluster.report"; then
    echo "  report by province equals the single node's"
  else
    echo "  REPORT DIFFERS from the single node's"
  fi
  scripts/cluster.sh down "$dir" >/dev/null
  rm -rf "$dir"
}

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); commit $(git rev-parse --short HEAD 2>/dev/null || echo ?); PARALLEL=$PARALLEL submits at a time, batch ${BATCH:-default}"
for round in $(seq 1 "$ROUNDS"); do
  single "$round"
  for setup in $SETUPS; do
    cluster "$round" "${setup%x*}" "${setup#*x}"
  done
done
if [ -s "$WORK/submit.err" ]; then echo "submit errors:"; sort "$WORK/submit.err" | uniq -c | head; fi
