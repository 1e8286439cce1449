#!/usr/bin/env bash
# loanledgerd and PostgreSQL 15 side by side, in one run, on the same input:
#
#  1. the input: per-bank CSV files, one BANK.csv per institution with the
#     CSV header, as `loanledger gen --out-dir` writes them. Either --files
#     DIR (e.g. bench/workload.sh's cache: /tmp/loanledger-workloads/
#     history-0.002-3-200 is workload (b)), or generated here with exactly
#     bench/workload.sh's gen flags (`loanledger gen --scale S --seed N
#     [--banks B] [--before D | --day D] --out-dir`: the same options give
#     byte-identical files). Each bank submits its own file, in file order,
#     in 10,000-event batches (loanledger submit's default). The
#     institutions are dealt to JOBS workers (--jobs, or --parallel as
#     workload.sh calls it), largest file (events) first to the worker with
#     the fewest events so far: the same fixed schedule on both sides;
#  2. loanledgerd (fresh data dir, one token per institution, 127.0.0.1):
#     each worker runs one `loanledger submit FILE` process per bank file,
#     one after the other, so JOBS CLI processes run at a time. This is
#     bench/workload.sh's "one CLI process per bank file, PARALLEL at a time"
#     (the time includes every process's start, connect and authentication),
#     except that workload.sh hands the next file (largest first, by bytes)
#     to whichever process slot frees first (xargs -P) where this script
#     fixes the same assignment in advance for both sides;
#     ingest = wall time from the first submit started to the last ack;
#  3. PostgreSQL 15 (a cluster initdb'd in a temp dir, started on 127.0.0.1,
#     fsync and synchronous_commit on, bench/postgres/postgresql.conf): each
#     worker is ONE psql session for all its banks (a pooled connection: a
#     PostgreSQL backend costs a fork and cold caches per connection, so
#     PostgreSQL does not pay the per-bank start that loanledgerd's side
#     does) applying the same batches in the same order; each batch = one
#     transaction: COPY into a TEMP staging table, then ll_apply_batch()
#     (bench/postgres/apply_batch.sql) validates set-based, appends the
#     journal, upserts loan states and the category x province x institution
#     x date deltas; ingest = wall time, first session started to the last
#     COMMIT returned;
#     with --history HDIR (or --day D when generating: the history is then
#     `gen ... --before D`), both sides first load HDIR the same way, NOT
#     timed (workload (c)'s store; workload.sh builds it with loanledger-load
#     --files, here loanledgerd's side uses the CLI as above, same result):
#     loanledgerd is then restarted on that
#     store, as workload.sh starts (c) on a copy of its built store;
#     PostgreSQL (its history batches split as each bank's turn comes and
#     removed after, a CHECKPOINT every 500 batches of a session: bounded
#     disk at scale 0.21) gets VACUUM (ANALYZE) and CHECKPOINT; then the
#     --files (the day) are timed as above. loanledgerd's data dir is
#     removed before PostgreSQL's turn unless --keep;
#  4. the report for DATE (all categories; then --by province) on both,
#     after the ingest (not during it, unlike workload.sh c): latency
#     p50/p99 over RUNS calls through one open connection each
#     (bench/postgres/report_timer.cc: Client::QueryReport vs libpq PQexec);
#     PostgreSQL from the maintained daily aggregate table (ll_report) and
#     from the journal's raw events (ll_report_events, RAW_RUNS calls);
#  5. checks that every figure of both reports (balances, loan counts,
#     year-ago balances, ytd increase and flows; yoy to 1e-9) is identical on
#     both sides and in both PostgreSQL variants, to the fen;
#  6. prints the summary (also kept in OUT_DIR when given).
#
# Usage: bench/compare_postgres.sh [--files DIR [--history HDIR]]
#          [--scale 1e-3] [--seed 1] [--banks N] [--before D | --day D]
#          [--jobs 2 | --parallel 2] [--runs 50] [--raw-runs 5]
#          [--date 2024-09-30] [--keep]
#   --files DIR: the bank files to time (DIR/*.csv; other files ignored)
#     instead of generating; --history HDIR: bank files loaded first, not
#     timed. Without --files: generates with --scale, --seed, --banks
#     (default: the model's 160 banks), --before D (only the history before
#     D) or --day D (D's events, timed, onto the history before D, loaded
#     first). --date defaults to D with --day, else 2024-09-30.
#   Workload (b): --scale 0.002 --seed 3 --banks 200 --parallel 4.
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
BANKS=
BEFORE=
DAY=
FILES=
HISTORY=
JOBS=2
RUNS=50
RAW_RUNS=5
WARMUP=3
DATE=
KEEP=0
BATCH=10000
usage() { sed -n '/^# Usage:/,/^#   a C++20/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 1; }
die() { echo "compare_postgres.sh: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case $1 in
    --scale|--seed|--banks|--before|--day|--files|--history|--jobs|--parallel|--runs|--raw-runs|--date)
      [ $# -ge 2 ] || die "$1 needs a value" ;;
  esac
  case $1 in
    --scale) SCALE=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --banks) BANKS=$2; shift 2 ;;
    --before) BEFORE=$2; shift 2 ;;
    --day) DAY=$2; shift 2 ;;
    --files) FILES=$2; shift 2 ;;
    --history) HISTORY=$2; shift 2 ;;
    --jobs|--parallel) JOBS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --raw-runs) RAW_RUNS=$2; shift 2 ;;
    --date) DATE=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage ;;
    *) echo "compare_postgres.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
for v in JOBS RUNS RAW_RUNS SEED; do
  if ! [[ ${!v} =~ ^[0-9]+$ ]] || { [ "${!v}" -lt 1 ] && [ "$v" != SEED ]; }; then
    name=$(tr 'A-Z_' 'a-z-' <<< "$v"); [ "$v" != JOBS ] || name="jobs/--parallel"
    die "--$name must be a positive integer"
  fi
done
[ -z "$BANKS" ] || [[ $BANKS =~ ^[1-9][0-9]*$ ]] || die "--banks must be a positive integer"
for v in BEFORE DAY; do
  [ -z "${!v}" ] || [[ ${!v} =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]] || die "--${v,,} must be YYYY-MM-DD"
done
[ -z "$BEFORE" ] || [ -z "$DAY" ] || die "give --before or --day, not both"
if [ -n "$FILES" ]; then
  [ -z "$BANKS$BEFORE$DAY" ] || die "--banks, --before and --day generate: not with --files (its files are given)"
  [ -d "$FILES" ] || die "--files: no directory '$FILES'"
  FILES=$(cd "$FILES" && pwd)
  if [ -n "$HISTORY" ]; then
    [ -d "$HISTORY" ] || die "--history: no directory '$HISTORY'"
    HISTORY=$(cd "$HISTORY" && pwd)
  fi
elif [ -n "$HISTORY" ]; then
  die "--history goes with --files (when generating, --day D loads the history before D)"
fi
[ -n "$DATE" ] || DATE=${DAY:-2024-09-30}
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

[[ ${WORK_DIR:-}$FILES$HISTORY != *"'"* ]] || die "a path with a single quote (psql scripts quote paths in '...')"
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
# The input: DIR/*.csv, one file per institution (INSTITUTION.csv, header first).
if [ -z "$FILES" ]; then
  GEN=(--scale "$SCALE" --seed "$SEED")  # bench/workload.sh's gen_dir flags
  [ -z "$BANKS" ] || GEN+=(--banks "$BANKS")
  gen() {  # OUT_DIR EXTRA_FLAGS...
    local out=$1; shift
    echo "loanledger gen ${GEN[*]}${*:+ $*} --out-dir $out" >&2
    "$LL" gen "${GEN[@]}" "$@" --out-dir "$out" 2> "$WORK/gen.log" \
      || { cat "$WORK/gen.log" >&2; die "loanledger gen failed"; }
    cat "$WORK/gen.log" >&2
  }
  step "1/6 generating the bank files"
  if [ -n "$DAY" ]; then
    gen "$WORK/gen/history" --before "$DAY"
    HISTORY=$WORK/gen/history
    gen "$WORK/gen/files" --day "$DAY"
  elif [ -n "$BEFORE" ]; then
    gen "$WORK/gen/files" --before "$BEFORE"
  else
    gen "$WORK/gen/files"
  fi
  FILES=$WORK/gen/files
  INPUT="gen ${GEN[*]}${BEFORE:+ --before $BEFORE}${DAY:+ --day $DAY}"
else
  step "1/6 the bank files of $FILES${HISTORY:+ (history first: $HISTORY)}"
  INPUT="files $FILES"
fi
FIRST_CSV=
for f in "$FILES"/*.csv; do FIRST_CSV=$f; break; done
[ -f "$FIRST_CSV" ] || die "no *.csv in $FILES"
IFS= read -r HEADER < "$FIRST_CSV" || HEADER=
[[ $HEADER == institution_id,* ]] || die "$FIRST_CSV: the first line is not the CSV header (institution_id,...)"

# prepare PHASE DIR: the phase's schedule, each institution (largest first,
# by events) to the worker with the fewest events so far
# ($WORK/PHASE/workers/K: worker K's institutions in order), and for the
# timed phase its batches ($WORK/timed/batches/INST/NNNNN: the file's lines
# after the header, BATCH at a time; the history's are split the same way
# by its psql sessions as they go, and removed after use, to bound the disk
# used at scale 0.21); $WORK/PHASE/counts: "EVENTS INSTITUTIONS BATCHES".
prepare() {
  local phase=$1 dir=$2 f inst header
  for f in "$dir"/*.csv; do
    [ -f "$f" ] || die "no *.csv in $dir"
    inst=$(basename "$f" .csv)
    [[ $inst =~ ^[A-Za-z0-9_-]+$ ]] || die "$f: expected INSTITUTION.csv (letters, digits, _ and -)"
    IFS= read -r header < "$f" || header=
    [ "$header" = "$HEADER" ] || die "$f: its first line is not the header of $FIRST_CSV"
  done
  mkdir -p "$WORK/$phase/workers" "$WORK/$phase/batches"
  (cd "$dir" && wc -l -- *.csv) | grep -v ' total$' | sort -k1,1nr -k2 > "$WORK/$phase/sizes"
  awk -v jobs="$JOBS" -v dir="$WORK/$phase/workers" '
    { best = 0; for (k = 1; k < jobs; k++) if (load[k] < load[best]) best = k
      load[best] += $1 - 1; sub(/\.csv$/, "", $2); print $2 > (dir "/" best) }' "$WORK/$phase/sizes"
  awk -v b="$BATCH" '{ e += $1 - 1; n += int(($1 - 1 + b - 1) / b) } END { print e + 0, NR, n + 0 }' \
    "$WORK/$phase/sizes" > "$WORK/$phase/counts"
  if [ "$phase" = timed ]; then
    while read -r _ f; do
      inst=${f%.csv}
      mkdir -p "$WORK/$phase/batches/$inst"
      tail -n +2 "$dir/$f" | split -l "$BATCH" -d -a 5 - "$WORK/$phase/batches/$inst/"
    done < "$WORK/$phase/sizes"
    [ "$(find "$WORK/$phase/batches" -type f | wc -l)" = "$(cut -d' ' -f3 "$WORK/$phase/counts")" ] \
      || die "splitting $dir into batches went wrong"
    cat "$dir"/*.csv > /dev/null  # both sides read warm files
  fi
}
PHASES=timed
HIST_EVENTS=0; HIST_INST=0; HIST_BATCHES=0
if [ -n "$HISTORY" ]; then
  PHASES="history timed"
  prepare history "$HISTORY"
  read -r HIST_EVENTS HIST_INST HIST_BATCHES < "$WORK/history/counts"
  echo "history (loaded first on both sides, not timed): $HIST_EVENTS events, $HIST_INST institutions," \
    "$HIST_BATCHES batches" >&2
fi
prepare timed "$FILES"
read -r EVENTS N_INST N_BATCHES < "$WORK/timed/counts"
[ "$EVENTS" -ge 1 ] || die "no events in $FILES"
echo "timed: $EVENTS events, $N_INST institutions, $N_BATCHES batches of up to $BATCH events, $JOBS workers" >&2
dir_of() { if [ "$1" = history ]; then echo "$HISTORY"; else echo "$FILES"; fi; }

step "building the report timer (bench/postgres/report_timer.cc)"
c++ -std=c++20 -O2 -I"$ROOT" -I/usr/include/postgresql "$ROOT/bench/postgres/report_timer.cc" -o "$WORK/report_timer" \
  "$BUILD_DIR/client/libloanledger_client.a" "$BUILD_DIR/schema/libloanledger_wire.a" \
  "$BUILD_DIR/schema/libloanledger_schema.a" -lflatbuffers -lssl -lcrypto -lpq -pthread \
  || die "could not build the report timer"
TIMER=$WORK/report_timer

# Runs "$1 K" for every worker K of phase $PHASE in parallel; fails if any
# worker failed.
run_workers() {
  local f k rc=0
  WORKER_PIDS=()
  for f in "$WORK/$PHASE/workers"/*; do k=${f##*/}; "$1" "$k" & WORKER_PIDS+=($!); done
  for k in "${WORKER_PIDS[@]}"; do wait "$k" || rc=1; done
  WORKER_PIDS=()
  return $rc
}

# ---------------------------------------------------------------------------
step "2/6 loanledgerd: fresh server, $N_INST institutions through the CLI, $JOBS at a time"
mkdir -p "$WORK/ll/tokens.d"
: > "$WORK/ll/tokens"
chmod 600 "$WORK/ll/tokens"
while read -r inst; do
  out=$("$LL" token new --role institution --institution "$inst" 2>/dev/null)
  sed -n 1p <<< "$out" > "$WORK/ll/tokens.d/$inst"
  sed -n 2p <<< "$out" >> "$WORK/ll/tokens"
done < <(cat "$WORK"/*/sizes | awk '{ sub(/\.csv$/, "", $2); print $2 }' | sort -u)
out=$("$LL" token new --role regulator 2>/dev/null)
REGULATOR=$(sed -n 1p <<< "$out")
sed -n 2p <<< "$out" >> "$WORK/ll/tokens"

start_lld() {
  rm -f "$WORK/ll/ready"
  "$LLD" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --data "$WORK/ll/data" --tokens "$WORK/ll/tokens" \
    --ready-file "$WORK/ll/ready" 2>> "$WORK/ll/server.log" &
  LLD_PID=$!
  for _ in $(seq 1 6000); do  # up to 5 minutes: a restart on a big store
    [ -s "$WORK/ll/ready" ] && break
    kill -0 "$LLD_PID" 2>/dev/null || { tail -n 20 "$WORK/ll/server.log" >&2; die "loanledgerd did not start"; }
    sleep 0.05
  done
  LL_SERVER=$(sed -n 's/^listen=//p' "$WORK/ll/ready" 2>/dev/null)
  [ -n "$LL_SERVER" ] || die "loanledgerd did not report its address"
  export LOANLEDGER_SERVER=$LL_SERVER
}
stop_lld() {
  kill -TERM "$LLD_PID"
  wait "$LLD_PID" 2>/dev/null || true
  LLD_PID=
}
# A loanledgerd worker: one CLI process per institution, one after the
# other; each writes its summary line to out/PHASE/INST.out, progress to .err.
ll_worker() {
  local inst dir
  dir=$(dir_of "$PHASE")
  while read -r inst; do
    LOANLEDGER_TOKEN=$(cat "$WORK/ll/tokens.d/$inst") "$LL" submit --batch-size "$BATCH" "$dir/$inst.csv" \
      > "$WORK/ll/out/$PHASE/$inst.out" 2> "$WORK/ll/out/$PHASE/$inst.err" \
      || { echo "submit $inst failed:" >&2; tail -n 5 "$WORK/ll/out/$PHASE/$inst.err" >&2; return 1; }
  done < "$WORK/$PHASE/workers/$1"
}
ll_sum() {  # PHASE FIELD: the sum of FIELD=N over the phase's summary lines
  cat "$WORK/ll/out/$1"/*.out | grep -hoE "(^| )$2=[0-9]+" | awk -F= '{ s += $2 } END { print s + 0 }'
}
start_lld
if [ -n "$HISTORY" ]; then
  PHASE=history
  mkdir -p "$WORK/ll/out/history"
  t0=$(now)
  run_workers ll_worker || die "loanledgerd history load failed"
  t1=$(now)
  [ "$(ll_sum history applied)" = "$HIST_EVENTS" ] \
    || die "loanledgerd applied $(ll_sum history applied) history events of $HIST_EVENTS"
  echo "loanledgerd: history of $HIST_EVENTS events loaded in $(python3 -c "print(f'{$t1 - $t0:.1f}')")s" \
    "(not timed); restarting on that store" >&2
  stop_lld
  start_lld
fi
PHASE=timed
mkdir -p "$WORK/ll/out/timed"
LL_LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)
cpu_server0=$(cpu_of "$LLD_PID"); cpu_client0=$(cpu_of $$)
t0=$(now)
run_workers ll_worker || die "loanledgerd ingest failed"
t1=$(now)
LL_CPU_SERVER=$(python3 -c "print(f'{$(cpu_of "$LLD_PID") - $cpu_server0:.1f}')")
LL_CPU_CLIENT=$(python3 -c "print(f'{$(cpu_of $$) - $cpu_client0:.1f}')")
LL_LOAD_AFTER=$(cut -d' ' -f1 /proc/loadavg)
LL_SECONDS=$(python3 -c "print(f'{$t1 - $t0:.3f}')")
LL_APPLIED=$(ll_sum timed applied)
LL_BATCHES=$(ll_sum timed batches)
[ "$LL_APPLIED" = "$EVENTS" ] || die "loanledgerd applied $LL_APPLIED events of $EVENTS"
echo "loanledgerd: $LL_APPLIED events in $LL_BATCHES batches, ${LL_SECONDS}s" >&2

LOANLEDGER_TOKEN=$REGULATOR "$LL" report --date "$DATE" --format json > "$WORK/ll/report.json"
LOANLEDGER_TOKEN=$REGULATOR "$LL" report --date "$DATE" --by province --format json > "$WORK/ll/report_province.json"
"$TIMER" loanledger "$LOANLEDGER_SERVER" "$REGULATOR" "$DATE" none "$RUNS" "$WARMUP" > "$WORK/ll/timer_none"
"$TIMER" loanledger "$LOANLEDGER_SERVER" "$REGULATOR" "$DATE" province "$RUNS" "$WARMUP" > "$WORK/ll/timer_province"
LL_DATA_BYTES=$(du -sb "$WORK/ll/data" | cut -f1)
stop_lld
[ "$KEEP" = 1 ] || rm -rf "$WORK/ll/data"  # disk for PostgreSQL's turn (scale 0.21)
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


# One psql script per worker and phase: the session's TEMP tables, then per
# batch of its institutions BEGIN; \copy (client side, over the TCP
# connection); ll_apply_batch; COMMIT.
COLS=${HEADER//,/, }
# The history (not timed): each institution's batches are split just before
# its first (psql's \!) and removed after its last, and a CHECKPOINT every
# 500 batches of a session keeps the WAL from growing to max_wal_size.
batch_sql() {  # FILE INSTITUTION
  echo "BEGIN;"
  echo "\\copy stage ($COLS) FROM '$1' WITH (FORMAT csv, FORCE_NOT_NULL (industry_code))"
  echo "SELECT * FROM ll_apply_batch('$2');"
  echo "COMMIT;"
}
declare -A HIST_LINES=()
if [ -n "$HISTORY" ]; then
  while read -r n f; do HIST_LINES[${f%.csv}]=$n; done < "$WORK/history/sizes"
fi
for phase in $PHASES; do
  mkdir -p "$PG_DIR/scripts/$phase" "$PG_DIR/out/$phase"
  for w in "$WORK/$phase/workers"/*; do
    k=${w##*/}
    {
      echo "\\i $ROOT/bench/postgres/session.sql"
      done_batches=0
      while read -r inst; do
        if [ "$phase" = timed ]; then
          for f in "$WORK/timed/batches/$inst"/*; do
            [ -f "$f" ] || continue  # a file with no events: no batch
            batch_sql "$f" "$inst"
          done
          continue
        fi
        b=$WORK/history/batches/$inst
        echo "\\! mkdir -p '$b' && tail -n +2 '$HISTORY/$inst.csv' | split -l $BATCH -d -a 5 - '$b/'"
        for ((i = 0; i < (HIST_LINES[$inst] - 1 + BATCH - 1) / BATCH; i++)); do
          batch_sql "$(printf '%s/%05d' "$b" "$i")" "$inst"
          done_batches=$((done_batches + 1))
          [ $((done_batches % 500)) != 0 ] || echo "CHECKPOINT;"
        done
        echo "\\! rm -rf '$b'"
      done < "$WORK/$phase/workers/$k"
    } > "$PG_DIR/scripts/$phase/$k.sql"
  done
done
pg_worker() {
  "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -f "$PG_DIR/scripts/$PHASE/$1.sql" > "$PG_DIR/out/$PHASE/$1.out" \
    2> "$PG_DIR/out/$PHASE/$1.err" \
    || { echo "psql worker $1 failed:" >&2; tail -n 5 "$PG_DIR/out/$PHASE/$1.err" >&2; return 1; }
}
# Each batch prints batch_no|applied|duplicates.
pg_applied() { cat "$PG_DIR/out/$1"/*.out | awk -F'|' 'NF == 3 { s += $2 } END { print s + 0 }'; }
pg_batches() { cat "$PG_DIR/out/$1"/*.out | awk -F'|' 'NF == 3 { n++ } END { print n + 0 }'; }

if [ -n "$HISTORY" ]; then
  step "PostgreSQL: the history's batches first, $JOBS sessions (not timed)"
  PHASE=history
  t0=$(now)
  run_workers pg_worker || die "PostgreSQL history load failed"
  "${PSQL[@]}" -c "VACUUM (ANALYZE) cell_daily, journal_event, loan, batch" -c "CHECKPOINT"
  t1=$(now)
  [ "$(pg_applied history)" = "$HIST_EVENTS" ] \
    || die "PostgreSQL applied $(pg_applied history) history events of $HIST_EVENTS"
  echo "PostgreSQL: history of $HIST_EVENTS events loaded, VACUUM (ANALYZE) and CHECKPOINT in" \
    "$(python3 -c "print(f'{$t1 - $t0:.1f}')")s (not timed)" >&2
fi

step "4/6 PostgreSQL: the same batches, $JOBS sessions"
PHASE=timed
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
PG_APPLIED=$(pg_applied timed)
PG_BATCHES=$(pg_batches timed)
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

INPUT=$INPUT HISTORY=$HISTORY python3 - "$WORK" "$PG_DIR" <<PY | tee "$WORK/summary.txt"
import os, sys
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
print(f"input: {os.environ['INPUT']}")
if $HIST_EVENTS:
    print(f"history loaded first on both sides, not timed: $HIST_EVENTS events, $HIST_INST institutions"
          f" ({os.environ['HISTORY']})")
print(f"timed: events={events} institutions=$N_INST batches=$N_BATCHES (<= $BATCH events) jobs=$JOBS"
      f" (loanledgerd: one CLI process per bank file, $JOBS at a time; PostgreSQL: $JOBS psql sessions) date=$DATE")
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
