#!/usr/bin/env bash
# The README's first command. On a fresh Debian bookworm machine (as root):
# installs the packages, builds Release, starts loanledgerd on 127.0.0.1
# with a fresh data directory and fresh tokens, generates the demo national
# portfolio (docs/domain.md, scale 1/10,000), submits it through the CLI with
# progress, prints the 2024-09-30 report next to the published figures, and
# leaves the server running.
#
#   scripts/quickstart.sh [--partitions P] [--replicas R]
#
# With --partitions or --replicas, the same demo runs on a local national
# cluster instead (docs/cluster.md): scripts/cluster.sh up starts 3
# nats-server and P x R loanledgerd (R loanledgerd replicas per partition;
# defaults P = 1, R = 3) on 127.0.0.1, ports chosen at run time, in
# $LOANLEDGER_HOME/cluster; each bank's file goes to its partition's leader
# and the report is summed over the partitions.
#
# Environment (all optional):
#   LOANLEDGER_HOME  where data, tokens, logs and the CSV go (default ./run)
#   LOANLEDGER_PORT  single node: client port (default 7700), LOANLEDGER_METRICS_PORT (default 9464),
#                    LOANLEDGER_HTTP_PORT (HTTP API and console, default 8080);
#                    0 = a free port chosen by the kernel (the tests): the addresses
#                    bound are in $LOANLEDGER_HOME/loanledgerd.ready (server/README.md)
#   LOANLEDGER_SCALE portfolio scale (default 0.0001), LOANLEDGER_SEED (default 1)
#   LOANLEDGER_BIN_DIR  use already-built binaries from this build dir and skip
#                       installing and building (the end-to-end test does)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
HOME_DIR=${LOANLEDGER_HOME:-$ROOT/run}
PORT=${LOANLEDGER_PORT:-7700}
METRICS_PORT=${LOANLEDGER_METRICS_PORT:-9464}
HTTP_PORT=${LOANLEDGER_HTTP_PORT:-8080}
SCALE=${LOANLEDGER_SCALE:-0.0001}
SEED=${LOANLEDGER_SEED:-1}
REPORT_DATE=2024-09-30

usage() { echo "usage: scripts/quickstart.sh [--partitions P] [--replicas R]" >&2; }
PARTITIONS="" REPLICAS=""
while [ $# -gt 0 ]; do
  case "$1" in
    --partitions | --replicas)
      if [ $# -lt 2 ] || ! [[ "$2" =~ ^[1-9][0-9]{0,2}$ ]]; then
        echo "quickstart.sh: $1 needs a whole number from 1 to 999" >&2; usage; exit 1
      fi
      if [ "$1" = --partitions ]; then PARTITIONS=$2; else REPLICAS=$2; fi
      shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "quickstart.sh: unknown argument: $1" >&2; usage; exit 1 ;;
  esac
done
CLUSTER_DIR=""
if [ -n "$PARTITIONS$REPLICAS" ]; then CLUSTER_DIR=$HOME_DIR/cluster; fi

step() { printf '\n== %s\n' "$*" >&2; }

if [ -z "${LOANLEDGER_BIN_DIR:-}" ]; then
  step "1/6 installing packages"
  scripts/install-deps.sh
  step "2/6 building (Release)"
  scripts/build.sh loanledgerd loanledger
fi
BIN_DIR=${LOANLEDGER_BIN_DIR:-$ROOT/build}
LL=$BIN_DIR/client/loanledger
LLD=$BIN_DIR/server/loanledgerd

# A server left running by an earlier quick start is stopped first.
if [ -f "$HOME_DIR/loanledgerd.pid" ]; then
  old=$(cat "$HOME_DIR/loanledgerd.pid")
  if kill -0 "$old" 2>/dev/null; then
    step "stopping the earlier loanledgerd (pid $old)"
    kill -TERM "$old"
    for _ in $(seq 1 100); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
  fi
fi
if [ -d "$HOME_DIR/cluster/pids" ]; then
  step "stopping the earlier quick start's cluster"
  LOANLEDGER_BIN_DIR=$BIN_DIR scripts/cluster.sh down "$HOME_DIR/cluster" >&2
fi
rm -rf "$HOME_DIR"
mkdir -p "$HOME_DIR/data" "$HOME_DIR/csv"

step "3/6 generating the demo portfolio (scale $SCALE, seed $SEED)"
"$LL" gen --scale "$SCALE" --seed "$SEED" --out "$HOME_DIR/portfolio.csv"
# One file per institution: each bank submits its own loans with its own token.
awk -F, -v dir="$HOME_DIR/csv" 'NR == 1 { header = $0; next }
  { f = dir "/" $1 ".csv"; if (!(f in seen)) { print header > f; seen[f] = 1 } print > f }' \
  "$HOME_DIR/portfolio.csv"
institutions=$(cd "$HOME_DIR/csv" && ls -- *.csv | sed 's/\.csv$//')
echo "$(wc -l < "$HOME_DIR/portfolio.csv") lines, $(echo "$institutions" | wc -l) institutions" >&2

if [ -n "$CLUSTER_DIR" ]; then
  where="a local cluster: 3 nats-server, ${PARTITIONS:-1} partition(s) x ${REPLICAS:-3} loanledgerd"
else
  where="loanledgerd on 127.0.0.1:$PORT"
fi
step "4/6 making tokens and starting $where"
TOKENS=$HOME_DIR/tokens
: > "$TOKENS"
chmod 600 "$TOKENS"
declare -A TOKEN_OF
for inst in $institutions; do
  out=$("$LL" token new --role institution --institution "$inst" 2>/dev/null)
  TOKEN_OF[$inst]=$(sed -n 1p <<<"$out")
  sed -n 2p <<<"$out" >> "$TOKENS"
done
out=$("$LL" token new --role regulator 2>/dev/null)
REGULATOR_TOKEN=$(sed -n 1p <<<"$out")
sed -n 2p <<<"$out" >> "$TOKENS"
echo "$REGULATOR_TOKEN" > "$HOME_DIR/regulator.token"
chmod 600 "$HOME_DIR/regulator.token"

if [ -n "$CLUSTER_DIR" ]; then
  LOANLEDGER_BIN_DIR=$BIN_DIR scripts/cluster.sh up "$CLUSTER_DIR" --tokens "$TOKENS" --http \
    ${PARTITIONS:+--partitions "$PARTITIONS"} ${REPLICAS:+--replicas "$REPLICAS"} >&2
  # shellcheck disable=SC1091
  . "$CLUSTER_DIR/cluster.env"
  ADDRESS=$LOANLEDGER_SERVER
  METRICS_ADDRESS=${METRICS%%,*}
  HTTP_ADDRESS=${HTTP%%,*}
else
  READY=$HOME_DIR/loanledgerd.ready
  nohup "$LLD" --listen "127.0.0.1:$PORT" --metrics-listen "127.0.0.1:$METRICS_PORT" \
    --http-listen "127.0.0.1:$HTTP_PORT" \
    --data "$HOME_DIR/data" --tokens "$TOKENS" --ready-file "$READY" > "$HOME_DIR/loanledgerd.log" 2>&1 &
  SERVER_PID=$!
  echo "$SERVER_PID" > "$HOME_DIR/loanledgerd.pid"
  # Ready once its ready file (written whole, after every listener is bound) names this PID.
  for _ in $(seq 1 300); do
    [ "$(sed -n 's/^pid=//p' "$READY" 2>/dev/null)" = "$SERVER_PID" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$HOME_DIR/loanledgerd.log" >&2; echo "loanledgerd did not start" >&2; exit 1; }
    sleep 0.1
  done
  [ "$(sed -n 's/^pid=//p' "$READY" 2>/dev/null)" = "$SERVER_PID" ] \
    || { cat "$HOME_DIR/loanledgerd.log" >&2; echo "loanledgerd not ready within 30 s" >&2; exit 1; }
  ADDRESS=$(sed -n 's/^listen=//p' "$READY")
  METRICS_ADDRESS=$(sed -n 's/^metrics=//p' "$READY")
  HTTP_ADDRESS=$(sed -n 's/^http=//p' "$READY")
  echo "loanledgerd (pid $SERVER_PID) listening on $ADDRESS, metrics on $METRICS_ADDRESS" >&2
fi

step "5/6 submitting the portfolio through the CLI"
export LOANLEDGER_SERVER=$ADDRESS
total_applied=0; total_duplicates=0; total_batches=0; n=0; count=$(echo "$institutions" | wc -l)
for inst in $institutions; do
  n=$((n + 1))
  summary=$(LOANLEDGER_TOKEN=${TOKEN_OF[$inst]} "$LL" submit "$HOME_DIR/csv/$inst.csv" 2>>"$HOME_DIR/submit.log" | tail -n 1)
  # A live line on a terminal; one line per institution otherwise.
  if [ -t 2 ]; then eol='\r'; else eol='\n'; fi
  printf "  [%3d/%3d] %-8s %s$eol" "$n" "$count" "$inst" "$summary" >&2
  eval "$(sed -E 's/([a-z]+)=([0-9]+)/s_\1=\2;/g' <<<"$summary")"
  total_applied=$((total_applied + s_applied)); total_duplicates=$((total_duplicates + s_duplicates))
  total_batches=$((total_batches + s_batches))
done
printf '\n' >&2
echo "submitted: applied=$total_applied duplicates=$total_duplicates batches=$total_batches institutions=$count"

step "6/6 the report for $REPORT_DATE, next to the published figures (docs/domain.md)"
LOANLEDGER_TOKEN=$REGULATOR_TOKEN "$LL" report --date "$REPORT_DATE" > "$HOME_DIR/report.txt"
cat "$HOME_DIR/report.txt"
LOANLEDGER_TOKEN=$REGULATOR_TOKEN "$LL" report --date "$REPORT_DATE" --format json > "$HOME_DIR/report.json"
python3 - "$HOME_DIR/report.json" "$SCALE" <<'PY'
import json, sys
report = json.load(open(sys.argv[1])); scale = float(sys.argv[2])
rows = {r["category"]: r for r in report["rows"] if r["group"] is None}
# docs/domain.md: PBoC, end of September 2024 (trillion yuan, YoY %); None = not published.
published = [("MANUFACTURING_MLT", 13.88, 14.8), ("HIGH_TECH_MANUFACTURING", None, 12.0),
             ("SRDI", 4.26, 13.5), ("INCLUSIVE_SMALL_MICRO", 32.90, 14.5)]
print(f"\n{'category':<26}{'published':>22}{'x scale (yuan)':>22}{'loanledger (yuan)':>22}{'pub. YoY':>10}{'YoY':>9}")
for cat, tn, yoy in published:
    r = rows[cat]
    bal_yuan = r["balance_fen"] / 100
    pub = f"{tn:.2f} tn yuan" if tn is not None else "-"
    target = f"{tn * 1e12 * scale:,.0f}" if tn is not None else "-"
    got_yoy = "null" if r["yoy_growth_pct"] is None else f"{r['yoy_growth_pct']:.2f}%"
    print(f"{cat:<26}{pub:>22}{target:>22}{bal_yuan:>22,.0f}{yoy:>9.1f}%{got_yoy:>9}")
PY

if [ -n "$CLUSTER_DIR" ]; then
  cat >&2 <<MSG

the cluster is running: $CLUSTER_DIR (nodes and logs: $CLUSTER_DIR/nodes.json; addresses: $CLUSTER_DIR/cluster.env)
  console:   http://$HTTP_ADDRESS/#token=$REGULATOR_TOKEN&date=$REPORT_DATE
             (any node's; open it in a browser; the token after # never leaves the browser)
  HTTP API:  http://$HTTP_ADDRESS/v1/report?date=$REPORT_DATE  (Authorization: Bearer TOKEN)
  metrics:   http://$METRICS_ADDRESS/metrics  (every node's: METRICS in cluster.env)
  query:     . $CLUSTER_DIR/cluster.env; LOANLEDGER_TOKEN=\$(cat $HOME_DIR/regulator.token) \\
             $LL report --date $REPORT_DATE --by province
  stop:      LOANLEDGER_BIN_DIR=$BIN_DIR scripts/cluster.sh down $CLUSTER_DIR
MSG
  exit 0
fi
cat >&2 <<MSG

loanledgerd is running (pid $SERVER_PID), data in $HOME_DIR/data, log $HOME_DIR/loanledgerd.log
  console:   http://$HTTP_ADDRESS/#token=$REGULATOR_TOKEN&date=$REPORT_DATE
             (open it in a browser; the token after # never leaves the browser)
  HTTP API:  http://$HTTP_ADDRESS/v1/report?date=$REPORT_DATE  (Authorization: Bearer TOKEN)
  metrics:   http://$METRICS_ADDRESS/metrics
  query:     LOANLEDGER_SERVER=$ADDRESS LOANLEDGER_TOKEN=\$(cat $HOME_DIR/regulator.token) \\
             $LL report --date $REPORT_DATE --by province
  stop:      kill $SERVER_PID
MSG
