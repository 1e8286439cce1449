#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang into build-fuzz/ and
# runs each for a while (tests/RELIABILITY.md).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
#   SECONDS_PER_TARGET  default 30; CI short mode (scripts/test.sh): 15. 0 = until stopped.
#   TARGET              fuzz_csv_line fuzz_validate_event fuzz_frame fuzz_rules (default: all)
#
# Environment: BUILD_DIR (build-fuzz), JOBS (ninja -j, 2), CXX_FUZZ (clang++-14),
# FUZZ_ARGS (extra libFuzzer flags, e.g. "-fork=2" or "-max_len=65536").
#
# Each target reads the checked-in seeds (tests/fuzz/corpus/<target>) and
# regressions (tests/fuzz/regressions/<target>) and keeps what it learns in
# BUILD_DIR/fuzz-work/<target>/corpus, so successive runs build on each
# other; the checked-in corpus is never written. A failing input is written
# to BUILD_DIR/fuzz-work/<target>/artifacts/ and the script exits 1: minimize
# it, copy it to tests/fuzz/regressions/<target>/, fix the bug, and the input
# stays a test (the replay driver runs it in every CTest build).
#
# Long runs (hours; the machine has 2 shared cores, so one target at a time):
#   scripts/fuzz.sh 3600 fuzz_frame
#   FUZZ_ARGS=-fork=2 scripts/fuzz.sh 28800     # 8 h per target, 2 worker processes
# Minimize a crash:   build-fuzz/tests/fuzz/<target> -minimize_crash=1 -max_total_time=60 \
#                       -exact_artifact_path=min CRASH_FILE
# Fold new coverage into the seeds (keep them small):
#   build-fuzz/tests/fuzz/<target> -merge=1 tests/fuzz/corpus/<target> build-fuzz/fuzz-work/<target>/corpus
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SECONDS_PER_TARGET=${1:-30}
if [ $# -gt 0 ]; then shift; fi
if ! [[ $SECONDS_PER_TARGET =~ ^[0-9]+$ ]]; then
  echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
  exit 1
fi
ALL_TARGETS=(fuzz_csv_line fuzz_validate_event fuzz_frame fuzz_rules)
if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL_TARGETS[@]}"); fi
BUILD_DIR=${BUILD_DIR:-build-fuzz}
JOBS=${JOBS:-2}
CXX_FUZZ=${CXX_FUZZ:-clang++-14}

# The project's packages, then clang 14 with its sanitizer and libFuzzer
# runtimes (not in install-deps.sh: only this script and sanitizer builds
# with clang need them).
scripts/install-deps.sh
if ! command -v "$CXX_FUZZ" >/dev/null || ! dpkg-query -W -f='${Status}' libclang-rt-14-dev 2>/dev/null |
    grep -q "install ok installed"; then
  if [ "$(id -u)" -eq 0 ] || command -v sudo >/dev/null; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    echo "fuzz.sh: installing clang-14 libclang-rt-14-dev lld-14" >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq clang-14 libclang-rt-14-dev lld-14 >&2
  fi
fi
if ! command -v "$CXX_FUZZ" >/dev/null; then
  echo "fuzz.sh: $CXX_FUZZ not found; apt-get install -y clang-14 libclang-rt-14-dev lld-14" >&2
  exit 1
fi

# The libraries under test are instrumented for coverage (fuzzer-no-link) and
# built with ASan + UBSan (LOANLEDGER_SANITIZE); the targets add libFuzzer.
# add_if_missing.cmake adds tests/fuzz if tests/CMakeLists.txt does not yet.
cmake -S . -B "$BUILD_DIR" -G Ninja \
  -DCMAKE_CXX_COMPILER="$CXX_FUZZ" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link" \
  -DLOANLEDGER_SANITIZE=ON \
  -DLOANLEDGER_BUILD_BENCH=OFF \
  -DCMAKE_PROJECT_INCLUDE="$ROOT/tests/fuzz/add_if_missing.cmake" >/dev/null
build_start=$(date +%s)
ninja -C "$BUILD_DIR" -j"$JOBS" "${TARGETS[@]}"
echo "fuzz.sh: built ${TARGETS[*]} in $(( $(date +%s) - build_start )) s"

# Per-target flags. fuzz_validate_event keeps a growing ledger in memory on
# purpose, so libFuzzer's per-input leak check (a full LSan scan whenever an
# input allocates more than it frees) would run on nearly every input (half
# the time in a profile); leaks are still checked once at exit.
extra_flags() {
  case "$1" in
    fuzz_validate_event) echo "-detect_leaks=0" ;;
    *) echo "" ;;
  esac
}

failed=()
summary=()
for t in "${TARGETS[@]}"; do
  work="$BUILD_DIR/fuzz-work/$t"
  mkdir -p "$work/corpus" "$work/artifacts"
  # Temp files (fuzz_validate_event's ledger) live here, not in /tmp: a run
  # that crashes cannot clean up, and the next run clears what it left.
  rm -rf "$work/tmp"
  mkdir -p "$work/tmp"
  log="$work/last-run.log"
  echo "fuzz.sh: $t for ${SECONDS_PER_TARGET} s (log: $log)"
  set +e
  # shellcheck disable=SC2046,SC2086  # word splitting of the flag lists is intended
  TMPDIR="$(cd "$work/tmp" && pwd)" "$BUILD_DIR/tests/fuzz/$t" \
    -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 -timeout=30 -rss_limit_mb=2048 \
    -artifact_prefix="$work/artifacts/" $(extra_flags "$t") ${FUZZ_ARGS:-} \
    "$work/corpus" "tests/fuzz/corpus/$t" "tests/fuzz/regressions/$t" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1)
  corpus=$(find "$work/corpus" -type f | wc -l)
  line="$t: ${SECONDS_PER_TARGET} s, ${execs:-?} executions (${rate:-?}/s), ${cov:-cov: ?}, corpus ${corpus} files"
  if [ "$rc" -ne 0 ]; then
    line="$line, FAILED (exit $rc)"
    failed+=("$t")
    echo "---- $t: last lines of $log" >&2
    tail -n 40 "$log" >&2
    echo "---- artifacts:" >&2
    ls -1 "$work/artifacts" >&2 || true
  fi
  # Harness summaries (fuzz_validate_event prints batches applied/rejected).
  harness=$(grep -E "^$t: [0-9]+ inputs" "$log" | tail -1 || true)
  [ -n "$harness" ] && line="$line"$'\n'"    $harness"
  summary+=("$line")
  echo "$line"
done

echo "fuzz.sh: summary"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: FAILED: ${failed[*]} (inputs in $BUILD_DIR/fuzz-work/<target>/artifacts/)" >&2
  exit 1
fi
echo "fuzz.sh: no findings"
