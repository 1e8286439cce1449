#!/usr/bin/env bash
# loanledgerd and PostgreSQL 15 side by side, in one run, on the same input:
#
#  1. generates the synthetic portfolio once (`loanledger gen --scale S --seed N`)
#     and splits it per institution (each bank submits its own loans, in its
#     file's order, in 10,000-event batches); the institutions are dealt to
#     JOBS workers, largest first to the least loaded worker (the same
#     schedule on both sides);
#  2. loanledgerd (fresh data dir and tokens, 127.0.0.1): each worker submits
#     its institutions one after the other through the CLI (`loanledger
#     submit`, one process and token per institution, as quickstart.sh);
#     ingest = wall time from the first submit started to the last ack;
#  3. PostgreSQL 15 (a cluster initdb'd in a temp dir, started on 127.0.0.1,
#     fsync and synchronous_commit on, bench/postgres/postgresql.conf): each
#     worker is one psql session (a pooled connection: a PostgreSQL backend
#     costs a fork and cold caches per connection) applying the same batches
#     in the same order; each batch = one transaction: COPY into a TEMP
#     staging table, then ll_apply_batch() (bench/postgres/apply_batch.sql)
#     validates set-based, appends the journal, upserts loan states and the
#     category x province x institution x date deltas; ingest = wall time,
#     first session started to the last COMMIT returned;
#  4. the report for DATE (all categories; then --by province) on both:
#     latency p50/p99 over RUNS calls through one open connection each
#     (bench/postgres/report_timer.cc: Client::QueryReport vs libpq PQexec);
#     PostgreSQL from the maintained daily aggregate table (ll_report) and
#     from the journal's raw events (ll_report_events, RAW_RUNS calls);
#  5. checks that every figure of both reports (balances, loan counts,
#     year-ago balances, ytd increase and flows; yoy to 1e-9) is identical on
#     both sides and in both PostgreSQL variants, to the fen;
#  6. prints the summary (also kept in OUT_DIR when given).
#
# Usage: bench/compare_postgres.sh [--scale 1e-3] [--seed 1] [--jobs 2]
#          [--runs 50] [--raw-runs 5] [--date 2024-09-30] [--keep]
# Environment: BUILD_DIR (default build) holds a Release build of loanledgerd,
#   loanledger and the client library; PG_BIN (default
#   /usr/lib/postgresql/15/bin); WORK_DIR (default a new dir under /tmp);
#   OUT_DIR: where to copy the summary, reports and logs.
# Needs: postgresql-15 and libpq-dev (apt-get install -y postgresql-15 libpq-dev),
#   a C++20 compiler, python3. Run as root (postgres then runs as the
#   `postgres` user) or as an ordinary user. Uses both cores: run it alone.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SCALE=1e-3
SEED=1
JOBS=2
RUNS=50
RAW_RUNS=5
WARMUP=3
DATE=2024-09-30
KEEP=0
BATCH=10000
usage() { sed -n '/^# Usage:/,/^#   a C++20/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 1; }
die() { echo "compare_postgres.sh: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case $1 in
    --scale|--seed|--jobs|--runs|--raw-runs|--date) [ $# -ge 2 ] || die "$1 needs a value" ;;
  esac
  case $1 in
    --scale) SCALE=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --raw-runs) RAW_RUNS=$2; shift 2 ;;
    --date) DATE=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage ;;
    *) echo "compare_postgres.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
for v in JOBS RUNS RAW_RUNS SEED; do
  [[ ${!v} =~ ^[0-9]+$ ]] && [ "${!v}" -ge 1 -o "$v" = SEED ] || die "--$(tr 'A-Z_' 'a-z-' <<< "$v") must be a positive integer"
done
[[ $DATE =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]] || die "--date must be YYYY-MM-DD"
step() { printf '\n== %s\n' "$*" >&2; }
now() { date +%s.%N; }

BUILD_DIR=${BUILD_DIR:-build}
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$ROOT/$BUILD_DIR ;; esac
LL=$BUILD_DIR/client/loanledger
LLD=$BUILD_DIR/server/loanledgerd
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
# From a clean checkout: install PostgreSQL 15 and libpq, and build, when missing (as root).
if [ "$(id -u)" -eq 0 ] && { [ ! -x "$PG_BIN/postgres" ] || [ ! -f /usr/include/postgresql/libpq-fe.h ]; }; then
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 libpq-dev >/dev/null
fi
if [ ! -e "$LLD" ] || [ ! -e "$LL" ] || [ ! -e "$BUILD_DIR/client/libloanledger_client.a" ]; then
  "$ROOT/scripts/install-deps.sh"
  BUILD_DIR=$BUILD_DIR "$ROOT/scripts/build.sh" loanledgerd loanledger loanledger-load loanledger_client
fi
for f in "$LL" "$LLD" "$BUILD_DIR/client/libloanledger_client.a" "$BUILD_DIR/schema/libloanledger_wire.a" \
         "$BUILD_DIR/schema/libloanledger_schema.a"; do
  [ -e "$f" ] || die "$f missing: build first (ninja -C $BUILD_DIR loanledgerd loanledger loanledger-load)"
done
for f in initdb postgres pg_ctl psql pg_isready; do
  [ -x "$PG_BIN/$f" ] || die "$PG_BIN/$f missing: apt-get install -y postgresql-15 (or set PG_BIN)"
done
[ -f /usr/include/postgresql/libpq-fe.h ] || die "libpq-fe.h missing: apt-get install -y libpq-dev"
command -v c++ >/dev/null || die "no C++ compiler (c++)"
command -v python3 >/dev/null || die "python3 missing"
"$PG_BIN/postgres" --version | grep -q ' 15\.' || die "$PG_BIN/postgres is not PostgreSQL 15"

WORK=${WORK_DIR:-$(mktemp -d /tmp/ll-vs-pg.XXXXXX)}
mkdir -p "$WORK"
LLD_PID=
PG_PID=
WORKER_PIDS=()
cleanup() {
  local rc=$? pid
  for pid in "${WORKER_PIDS[@]}"; do  # interrupted during an ingest
    if kill -0 "$pid" 2>/dev/null; then
      pkill -TERM -P "$pid" 2>/dev/null || true
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  if [ -n "$LLD_PID" ] && kill -0 "$LLD_PID" 2>/dev/null; then
    kill -TERM "$LLD_PID" 2>/dev/null || true
    wait "$LLD_PID" 2>/dev/null || true
  fi
  if [ -n "$PG_PID" ] && kill -0 "$PG_PID" 2>/dev/null; then
    kill -INT "$PG_PID" 2>/dev/null || true  # fast shutdown
    for _ in $(seq 1 100); do kill -0 "$PG_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PG_PID" 2>/dev/null || true
  fi
  if [ "$KEEP" = 1 ] || [ $rc -ne 0 ]; then
    echo "work directory kept: $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# CPU seconds of a process, its threads and its reaped children (/proc stat).
TICKS=$(getconf CLK_TCK)
cpu_of() { awk -v t="$TICKS" '{ printf "%.2f", ($14 + $15 + $16 + $17) / t }' "/proc/$1/stat"; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# ---------------------------------------------------------------------------
step "1/6 generating the portfolio (scale $SCALE, seed $SEED) and splitting it"
"$LL" gen --scale "$SCALE" --seed "$SEED" --out "$WORK/portfolio.csv" 2> "$WORK/gen.log" \
  || { cat "$WORK/gen.log" >&2; die "loanledger gen failed"; }
cat "$WORK/gen.log" >&2
HEADER=$(head -n 1 "$WORK/portfolio.csv")
mkdir -p "$WORK/csv" "$WORK/batches"
awk -F, -v dir="$WORK/csv" 'NR == 1 { header = $0; next }
  { f = dir "/" $1 ".csv"; if (!(f in seen)) { print header > f; seen[f] = 1 } print > f }' "$WORK/portfolio.csv"
# Largest institution first (both sides): JOBS workers stay busy to the end.
INSTITUTIONS=$(cd "$WORK/csv" && wc -l -- *.csv | grep -v ' total$' | sort -k1,1nr -k2 | awk '{ sub(/\.csv$/, "", $2); print $2 }')
EVENTS=$(($(wc -l < "$WORK/portfolio.csv") - 1))
N_INST=$(wc -w <<< "$INSTITUTIONS")
# The schedule: each institution (largest first) to the worker with the
# fewest events so far; workers/K lists worker K's institutions in order.
mkdir -p "$WORK/workers"
(cd "$WORK/csv" && wc -l -- *.csv | grep -v ' total$' | sort -k1,1nr -k2) | awk -v jobs="$JOBS" -v dir="$WORK/workers" '
  { best = 0; for (k = 1; k < jobs; k++) if (load[k] < load[best]) best = k
    load[best] += $1; sub(/\.csv$/, "", $2); print $2 > (dir "/" best) }'
WORKERS=$(ls "$WORK/workers")
for inst in $INSTITUTIONS; do
  mkdir -p "$WORK/batches/$inst"
  tail -n +2 "$WORK/csv/$inst.csv" | split -l "$BATCH" -d -a 5 - "$WORK/batches/$inst/"
done
N_BATCHES=$(find "$WORK/batches" -type f | wc -l)
echo "$EVENTS events, $N_INST institutions, $N_BATCHES batches of up to $BATCH events" >&2
cat "$WORK"/csv/*.csv > /dev/null  # both sides read warm files

step "building the report timer (bench/postgres/report_timer.cc)"
c++ -std=c++20 -O2 -I"$ROOT" -I/usr/include/postgresql "$ROOT/bench/postgres/report_timer.cc" -o "$WORK/report_timer" \
  "$BUILD_DIR/client/libloanledger_client.a" "$BUILD_DIR/schema/libloanledger_wire.a" \
  "$BUILD_DIR/schema/libloanledger_schema.a" -lflatbuffers -lssl -lcrypto -lpq -pthread \
  || die "could not build the report timer"
TIMER=$WORK/report_timer

# ---------------------------------------------------------------------------
step "2/6 loanledgerd: fresh server, $N_INST institutions through the CLI, $JOBS workers"
mkdir -p "$WORK/ll/tokens.d" "$WORK/ll/out"
: > "$WORK/ll/tokens"
chmod 600 "$WORK/ll/tokens"
for inst in $INSTITUTIONS; do
  out=$("$LL" token new --role institution --institution "$inst" 2>/dev/null)
  sed -n 1p <<< "$out" > "$WORK/ll/tokens.d/$inst"
  sed -n 2p <<< "$out" >> "$WORK/ll/tokens"
done
out=$("$LL" token new --role regulator 2>/dev/null)
REGULATOR=$(sed -n 1p <<< "$out")
sed -n 2p <<< "$out" >> "$WORK/ll/tokens"

"$LLD" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --data "$WORK/ll/data" --tokens "$WORK/ll/tokens" \
  2> "$WORK/ll/server.log" &
LLD_PID=$!
for _ in $(seq 1 200); do
  grep -q "listening on" "$WORK/ll/server.log" && break
  kill -0 "$LLD_PID" 2>/dev/null || { cat "$WORK/ll/server.log" >&2; die "loanledgerd did not start"; }
  sleep 0.05
done
LL_PORT=$(grep -o "listening on [0-9.]*:[0-9]*" "$WORK/ll/server.log" | head -1 | sed 's/.*://')
[ -n "$LL_PORT" ] || die "loanledgerd did not report its port"
export LOANLEDGER_SERVER=127.0.0.1:$LL_PORT

# Runs "$1 K" for every worker K in parallel; fails if any worker failed.
run_workers() {
  local k rc=0
  WORKER_PIDS=()
  for k in $WORKERS; do "$1" "$k" & WORKER_PIDS+=($!); done
  for k in "${WORKER_PIDS[@]}"; do wait "$k" || rc=1; done
  WORKER_PIDS=()
  return $rc
}
# A loanledgerd worker: one CLI process per institution, one after the
# other; each writes its summary line to out/INST.out, progress to .err.
ll_worker() {
  local inst
  while read -r inst; do
    LOANLEDGER_TOKEN=$(cat "$WORK/ll/tokens.d/$inst") "$LL" submit --batch-size "$BATCH" "$WORK/csv/$inst.csv" \
      > "$WORK/ll/out/$inst.out" 2> "$WORK/ll/out/$inst.err" \
      || { echo "submit $inst failed:" >&2; tail -n 5 "$WORK/ll/out/$inst.err" >&2; return 1; }
  done < "$WORK/workers/$1"
}
LL_LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)
cpu_server0=$(cpu_of "$LLD_PID"); cpu_client0=$(cpu_of $$)
t0=$(now)
run_workers ll_worker || die "loanledgerd ingest failed"
t1=$(now)
LL_CPU_SERVER=$(python3 -c "print(f'{$(cpu_of "$LLD_PID") - $cpu_server0:.1f}')")
LL_CPU_CLIENT=$(python3 -c "print(f'{$(cpu_of $$) - $cpu_client0:.1f}')")
LL_LOAD_AFTER=$(cut -d' ' -f1 /proc/loadavg)
LL_SECONDS=$(python3 -c "print(f'{$t1 - $t0:.3f}')")
LL_APPLIED=$(cat "$WORK"/ll/out/*.out | grep -ho 'applied=[0-9]*' | awk -F= '{ s += $2 } END { print s + 0 }')
LL_BATCHES=$(cat "$WORK"/ll/out/*.out | grep -ho ' batches=[0-9]*' | awk -F= '{ s += $2 } END { print s + 0 }')
[ "$LL_APPLIED" = "$EVENTS" ] || die "loanledgerd applied $LL_APPLIED events of $EVENTS"
echo "loanledgerd: $LL_APPLIED events in $LL_BATCHES batches, ${LL_SECONDS}s" >&2

LOANLEDGER_TOKEN=$REGULATOR "$LL" report --date "$DATE" --format json > "$WORK/ll/report.json"
LOANLEDGER_TOKEN=$REGULATOR "$LL" report --date "$DATE" --by province --format json > "$WORK/ll/report_province.json"
"$TIMER" loanledger "$LOANLEDGER_SERVER" "$REGULATOR" "$DATE" none "$RUNS" "$WARMUP" > "$WORK/ll/timer_none"
"$TIMER" loanledger "$LOANLEDGER_SERVER" "$REGULATOR" "$DATE" province "$RUNS" "$WARMUP" > "$WORK/ll/timer_province"
LL_DATA_BYTES=$(du -sb "$WORK/ll/data" | cut -f1)
kill -TERM "$LLD_PID"
wait "$LLD_PID" 2>/dev/null || true
LLD_PID=

# ---------------------------------------------------------------------------
step "3/6 PostgreSQL 15: initdb, start on 127.0.0.1, schema"
PG_DIR=$WORK/pg
mkdir -p "$PG_DIR"
PG_RUN=()
if [ "$(id -u)" = 0 ]; then  # postgres refuses to run as root
  id postgres >/dev/null 2>&1 || die "no 'postgres' user to run the server as"
  chown postgres: "$PG_DIR"
  chmod 755 "$WORK"
  PG_RUN=(runuser -u postgres --)
fi
"${PG_RUN[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" --no-locale -E UTF8 -U postgres -A trust > "$PG_DIR/initdb.log" 2>&1 \
  || { cat "$PG_DIR/initdb.log" >&2; die "initdb failed"; }
{ echo; echo "# bench/postgres/postgresql.conf"; cat "$ROOT/bench/postgres/postgresql.conf"; } \
  | "${PG_RUN[@]}" tee -a "$PG_DIR/data/postgresql.conf" > /dev/null
PG_PORT=$(free_port)
"${PG_RUN[@]}" "$PG_BIN/postgres" -D "$PG_DIR/data" -c listen_addresses=127.0.0.1 -p "$PG_PORT" \
  -c unix_socket_directories="$PG_DIR" > "$PG_DIR/server.log" 2>&1 &
PG_PID=$!  # the runuser wrapper until the postmaster's own PID is known
for _ in $(seq 1 100); do
  "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break
  kill -0 "$PG_PID" 2>/dev/null || { cat "$PG_DIR/server.log" >&2; die "postgres did not start"; }
  sleep 0.1
done
"$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" || die "postgres not ready"
PG_PID=$(head -n 1 "$PG_DIR/data/postmaster.pid")  # stopped by this PID (SIGINT: fast shutdown)
export PGHOST=127.0.0.1 PGPORT=$PG_PORT PGUSER=postgres PGDATABASE=ledger
PSQL=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1)
"${PSQL[@]}" -d postgres -c "CREATE DATABASE ledger"
"${PSQL[@]}" -f "$ROOT/bench/postgres/schema.sql" -f "$ROOT/bench/postgres/apply_batch.sql" \
  -f "$ROOT/bench/postgres/report.sql"
"${PSQL[@]}" -At -c "SELECT name || '=' || setting FROM pg_settings WHERE name IN
  ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_level', 'shared_buffers', 'wal_buffers',
   'max_wal_size', 'checkpoint_timeout', 'wal_compression') ORDER BY name" | tr '\n' ' ' > "$PG_DIR/settings"
echo "$("$PG_BIN/postgres" --version); $(cat "$PG_DIR/settings")" >&2
grep -q 'fsync=on' "$PG_DIR/settings" && grep -q 'synchronous_commit=on' "$PG_DIR/settings" \
  || die "PostgreSQL is not running with fsync and synchronous_commit on"

# One psql script per worker: the session's TEMP tables, then per batch of
# its institutions BEGIN; \copy (client side, over the TCP connection);
# ll_apply_batch; COMMIT.
COLS=$(sed 's/,/, /g' <<< "$HEADER")
mkdir -p "$PG_DIR/scripts" "$PG_DIR/out"
for k in $WORKERS; do
  {
    echo "\\i $ROOT/bench/postgres/session.sql"
    while read -r inst; do
      for f in "$WORK/batches/$inst"/*; do
        echo "BEGIN;"
        echo "\\copy stage ($COLS) FROM '$f' WITH (FORMAT csv, FORCE_NOT_NULL (industry_code))"
        echo "SELECT * FROM ll_apply_batch('$inst');"
        echo "COMMIT;"
      done
    done < "$WORK/workers/$k"
  } > "$PG_DIR/scripts/$k.sql"
done

step "4/6 PostgreSQL: the same batches, $JOBS sessions"
pg_worker() {
  "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -f "$PG_DIR/scripts/$1.sql" > "$PG_DIR/out/$1.out" 2> "$PG_DIR/out/$1.err" \
    || { echo "psql worker $1 failed:" >&2; tail -n 5 "$PG_DIR/out/$1.err" >&2; return 1; }
}
PG_LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)
# Server CPU: the postmaster with its exited children (the sessions' backends
# once psql has quit, autovacuum workers); the long-lived auxiliary processes
# (WAL writer, checkpointer, background writer) are not counted.
cpu_server0=$(cpu_of "$PG_PID"); cpu_client0=$(cpu_of $$)
t0=$(now)
run_workers pg_worker || die "PostgreSQL ingest failed"
t1=$(now)
sleep 0.5  # let the postmaster reap the sessions' backends
PG_CPU_SERVER=$(python3 -c "print(f'{$(cpu_of "$PG_PID") - $cpu_server0:.1f}')")
PG_CPU_CLIENT=$(python3 -c "print(f'{$(cpu_of $$) - $cpu_client0:.1f}')")
PG_LOAD_AFTER=$(cut -d' ' -f1 /proc/loadavg)
PG_SECONDS=$(python3 -c "print(f'{$t1 - $t0:.3f}')")
# Each batch prints batch_no|applied|duplicates.
PG_APPLIED=$(cat "$PG_DIR"/out/*.out | awk -F'|' 'NF == 3 { s += $2 } END { print s + 0 }')
PG_BATCHES=$(cat "$PG_DIR"/out/*.out | awk -F'|' 'NF == 3 { n++ } END { print n + 0 }')
[ "$PG_APPLIED" = "$EVENTS" ] || die "PostgreSQL applied $PG_APPLIED events of $EVENTS"
echo "PostgreSQL: $PG_APPLIED events in $PG_BATCHES batches, ${PG_SECONDS}s" >&2

# What autovacuum would get to: visibility map and statistics (timed apart,
# not part of the ingest figure).
t0=$(now)
"${PSQL[@]}" -c "VACUUM (ANALYZE) cell_daily, journal_event, loan, batch"
t1=$(now)
PG_VACUUM_SECONDS=$(python3 -c "print(f'{$t1 - $t0:.3f}')")
PG_DB_BYTES=$("${PSQL[@]}" -At -c "SELECT pg_database_size('ledger')")
PG_WAL_BYTES=$(du -sb "$PG_DIR/data/pg_wal" | cut -f1)
PG_CELLS=$("${PSQL[@]}" -At -c "SELECT count(*) FROM cell_daily")

# ---------------------------------------------------------------------------
step "5/6 reports for $DATE: PostgreSQL latency and figures"
pg_sql() { echo "SELECT * FROM $1('$DATE', $2)"; }
CONNINFO="host=127.0.0.1 port=$PG_PORT user=postgres dbname=ledger"
for v in ll_report:none ll_report_events:none ll_report:province ll_report_events:province; do
  fn=${v%%:*}; by=${v#*:}
  [ "$by" = province ] && flag=true || flag=false
  "${PSQL[@]}" -c "\\copy ($(pg_sql "$fn" "$flag")) TO '$PG_DIR/$fn.$by.csv' WITH (FORMAT csv, HEADER)"
done
"$TIMER" postgres "$CONNINFO" "$(pg_sql ll_report false)" "$RUNS" "$WARMUP" > "$PG_DIR/timer_daily_none"
"$TIMER" postgres "$CONNINFO" "$(pg_sql ll_report true)" "$RUNS" "$WARMUP" > "$PG_DIR/timer_daily_province"
"$TIMER" postgres "$CONNINFO" "$(pg_sql ll_report_events false)" "$RAW_RUNS" 1 > "$PG_DIR/timer_events_none"
"$TIMER" postgres "$CONNINFO" "$(pg_sql ll_report_events true)" "$RAW_RUNS" 1 > "$PG_DIR/timer_events_province"
"${PSQL[@]}" -c "EXPLAIN (ANALYZE, BUFFERS) $(pg_sql ll_report false)" > "$PG_DIR/explain_report.txt" 2>&1 || true

# ---------------------------------------------------------------------------
step "6/6 checking that both sides agree, summary"
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -z "$(git -C "$ROOT" --no-optional-locks status --porcelain 2>/dev/null)" ] || COMMIT="$COMMIT+uncommitted"
python3 - "$WORK" "$PG_DIR" <<'PY' > "$WORK/check.txt"
import csv, json, sys
work, pg = sys.argv[1], sys.argv[2]
FIELDS = ["balance_fen", "loan_count", "balance_year_ago_fen", "ytd_increase_fen",
          "disbursed_ytd_fen", "repaid_ytd_fen", "written_off_ytd_fen"]

def from_json(path):
    rows = {}
    for r in json.load(open(path))["rows"]:
        rows[(r["category"], r["group"])] = r
    return rows

def from_csv(path):
    rows = {}
    for r in csv.DictReader(open(path)):
        row = {f: int(r[f]) for f in FIELDS}
        row["yoy_growth_pct"] = None if r["yoy_growth_pct"] == "" else float(r["yoy_growth_pct"])
        rows[(r["category"], r["grp"] or None)] = row
    return rows

def compare(name_a, a, name_b, b):
    bad = []
    for key in sorted(set(a) | set(b), key=lambda k: (k[0], k[1] or "")):
        if key not in a or key not in b:
            bad.append(f"{key}: only in {name_a if key in a else name_b}")
            continue
        for f in FIELDS:
            if a[key][f] != b[key][f]:
                bad.append(f"{key} {f}: {name_a} {a[key][f]} {name_b} {b[key][f]} (diff {a[key][f] - b[key][f]})")
        ya, yb = a[key]["yoy_growth_pct"], b[key]["yoy_growth_pct"]
        if (ya is None) != (yb is None) or (ya is not None and abs(ya - yb) > 1e-9 * max(1.0, abs(ya))):
            bad.append(f"{key} yoy_growth_pct: {name_a} {ya} {name_b} {yb}")
    return bad

ok = True
for by in ("none", "province"):
    ll = from_json(f"{work}/ll/report{'' if by == 'none' else '_province'}.json")
    daily = from_csv(f"{pg}/ll_report.{by}.csv")
    raw = from_csv(f"{pg}/ll_report_events.{by}.csv")
    for (na, a, nb, b) in (("loanledgerd", ll, "pg_daily", daily), ("pg_daily", daily, "pg_events", raw)):
        bad = compare(na, a, nb, b)
        status = "IDENTICAL" if not bad else f"{len(bad)} DIFFERENCES"
        print(f"report by={by}: {na} vs {nb}: {len(a)} rows vs {len(b)} rows, "
              f"{len(FIELDS)} integer fields + yoy per row: {status}")
        for line in bad[:20]:
            print("   ", line)
        ok = ok and not bad
print("AGREE" if ok else "DISAGREE")
PY
cat "$WORK/check.txt" >&2

python3 - "$WORK" "$PG_DIR" <<PY | tee "$WORK/summary.txt"
import sys
work, pg = sys.argv[1], sys.argv[2]
def timer(path):
    return dict(kv.split("=") for kv in open(path).read().split())
ll_n, ll_p = timer(f"{work}/ll/timer_none"), timer(f"{work}/ll/timer_province")
dn, dp = timer(f"{pg}/timer_daily_none"), timer(f"{pg}/timer_daily_province")
en, ep = timer(f"{pg}/timer_events_none"), timer(f"{pg}/timer_events_province")
events, ll_s, pg_s = $EVENTS, $LL_SECONDS, $PG_SECONDS
ll_rate, pg_rate = events / ll_s, events / pg_s
print("$(date -u '+%Y-%m-%d %H:%M UTC'), source at commit $COMMIT, loanledgerd built $(date -u -r "$LLD" '+%Y-%m-%d %H:%M UTC'),"
      " $(uname -m) $(nproc) cores, $("$PG_BIN/postgres" --version)")
print(f"scale=$SCALE seed=$SEED events={events} institutions=$N_INST batches=$N_BATCHES (<= $BATCH events) jobs=$JOBS date=$DATE")
print(f"{'':34}{'loanledgerd':>14}{'PostgreSQL 15':>16}{'ll better by':>13}")
print(f"{'ingest wall time (s)':34}{ll_s:>14.2f}{pg_s:>16.2f}{pg_s / ll_s:>12.1f}x")
print(f"{'ingest events/s':34}{ll_rate:>14,.0f}{pg_rate:>16,.0f}{ll_rate / pg_rate:>12.1f}x")
ll_cs, pg_cs = $LL_CPU_SERVER, $PG_CPU_SERVER
print(f"{'ingest server CPU s':34}{ll_cs:>14.1f}{pg_cs:>16.1f}{pg_cs / max(ll_cs, 0.01):>12.1f}x")
print(f"{'ingest events per server CPU s':34}{events / max(ll_cs, 0.01):>14,.0f}{events / max(pg_cs, 0.01):>16,.0f}"
      f"{(events / max(ll_cs, 0.01)) / (events / max(pg_cs, 0.01)):>12.1f}x")
print(f"{'ingest client CPU s (CLI / psql)':34}{$LL_CPU_CLIENT:>14.1f}{$PG_CPU_CLIENT:>16.1f}")
def row(label, a, b, key):
    fa, fb = float(a[key]), float(b[key])
    print(f"{label:34}{fa:>14.3f}{fb:>16.3f}{fb / fa:>12.0f}x")
row("report p50 ms (daily table)", ll_n, dn, "p50_ms")
row("report p99 ms (daily table)", ll_n, dn, "p99_ms")
row("report by province p50 ms", ll_p, dp, "p50_ms")
row("report by province p99 ms", ll_p, dp, "p99_ms")
row("report p50 ms (raw events)", ll_n, en, "p50_ms")
row("report by province p50 (raw ev.)", ll_p, ep, "p50_ms")
print(f"report runs: {ll_n['runs']} per query (raw events: {en['runs']}), after $WARMUP warm-up calls (raw: 1);"
      f" rows: {ll_n['rows']} / {ll_p['rows']} by province")
print(f"PostgreSQL: cells={$PG_CELLS} database={$PG_DB_BYTES / 2**20:.0f} MiB WAL dir={$PG_WAL_BYTES / 2**20:.0f} MiB"
      f" VACUUM ANALYZE after ingest {$PG_VACUUM_SECONDS:.1f}s (not in ingest time)")
print(f"loanledgerd: data dir={$LL_DATA_BYTES / 2**20:.0f} MiB")
print("machine: $(nproc) cores, 1-min load average before/after ingest: loanledgerd $LL_LOAD_BEFORE/$LL_LOAD_AFTER,"
      " PostgreSQL $PG_LOAD_BEFORE/$PG_LOAD_AFTER (the run's own work included)")
print("reports agree:", open(f"{work}/check.txt").read().split()[-1])
PY

if [ -n "${OUT_DIR:-}" ]; then
  mkdir -p "$OUT_DIR"
  cp "$WORK/summary.txt" "$WORK/check.txt" "$WORK/ll/report.json" "$WORK/ll/report_province.json" \
     "$PG_DIR"/ll_report*.csv "$PG_DIR/explain_report.txt" "$PG_DIR/settings" "$OUT_DIR/"
  cp "$PG_DIR/server.log" "$OUT_DIR/postgres.log"; cp "$WORK/ll/server.log" "$OUT_DIR/loanledgerd.log"
fi
grep -q '^AGREE$' "$WORK/check.txt" || { echo "the two sides' reports differ: see above" >&2; exit 2; }
