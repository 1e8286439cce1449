#!/usr/bin/env bash
# Builds the project with a sanitizer and runs the tests under it
# (tests/RELIABILITY.md).
#
#   scripts/sanitize.sh asan [CTEST_ARGS...]   ASan + UBSan, every test suite
#   scripts/sanitize.sh tsan [CTEST_ARGS...]   ThreadSanitizer, the tests with threads
#                                              and sockets: server, client, CLI end to end,
#                                              one partitioned cluster
#
# asan: build-asan/, -DLOANLEDGER_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug, then
#       ctest over every registered test (unit, cli, gen, integration, e2e,
#       crash, cluster, and the fuzz corpus replays) but those that run none
#       of the project's C++ and the cluster scenarios that repeat another's
#       code paths (asan_exclude below; the plain pass runs them all).
# tsan: build-tsan/, -DLOANLEDGER_TSAN=ON -DCMAKE_BUILD_TYPE=Debug, then
#       ctest -L 'integration|server|e2e' (cluster_asker_test among them), the
#       CLI end-to-end tests (CliE2e*), the storage test with a writer and
#       readers in parallel, the one with loan snapshots written beside the
#       writer, and cluster_partitions_2x2 (4 loanledgerd and their fan-out).
# Extra CTEST_ARGS are appended (e.g. -R Storage, or -L fuzz).
#
# Environment: BUILD_DIR (build-asan / build-tsan), JOBS (ninja -j, 2),
# CTEST_JOBS (2), WERROR (OFF: this build hunts sanitizer reports, not
# warnings), CXX (the compiler CMake picks up on a fresh BUILD_DIR; g++),
# ASAN_OPTIONS / UBSAN_OPTIONS / TSAN_OPTIONS (defaults below; yours win).
# Any sanitizer report fails the test that produced it (halt_on_error), and
# the script exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

MODE=${1:-}
if [ $# -gt 0 ]; then shift; fi
JOBS=${JOBS:-2}
CTEST_JOBS=${CTEST_JOBS:-2}

case "$MODE" in
  asan)
    BUILD_DIR=${BUILD_DIR:-build-asan}
    SANITIZER_FLAGS=(-DLOANLEDGER_SANITIZE=ON -DLOANLEDGER_TSAN=OFF)
    ;;
  tsan)
    BUILD_DIR=${BUILD_DIR:-build-tsan}
    SANITIZER_FLAGS=(-DLOANLEDGER_TSAN=ON -DLOANLEDGER_SANITIZE=OFF)
    ;;
  *)
    echo "usage: scripts/sanitize.sh asan|tsan [CTEST_ARGS...]" >&2
    exit 1
    ;;
esac

# Stack traces for every report; stop at the first one so that the test fails.
# quarantine_size_mb=16 (ASan's default is 256): freed memory waits in the
# quarantine before reuse, which shows as RSS, and the hostile-client tests
# bound the server's RSS growth (256 MiB); 16 MiB still catches a use after a
# recent free.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1:quarantine_size_mb=16}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

scripts/install-deps.sh

# Debug: no inlining to hide a frame, and assertions as written. The fuzz
# targets come in through add_if_missing.cmake until tests/CMakeLists.txt
# adds them (their corpus replays then run under the sanitizer too).
cmake -S . -B "$BUILD_DIR" -G Ninja \
  -DCMAKE_BUILD_TYPE=Debug \
  "${SANITIZER_FLAGS[@]}" \
  -DLOANLEDGER_WERROR="${WERROR:-OFF}" \
  -DLOANLEDGER_BUILD_BENCH=OFF \
  -DCMAKE_PROJECT_INCLUDE="$ROOT/tests/fuzz/add_if_missing.cmake" >/dev/null
# RocksDB is the Debian shared library, not built with -fsanitize=thread: TSan
# sees its threads allocate and lock but not its atomics, so it reports races
# inside RocksDB that are its own. Seen at every Ledger::Open of an existing
# store (a restarted node, a reopen): RocksDB's cache-role registry, a
# function-local static, is created by one thread (new, in
# RegisterCacheDeleterRole) and its mutex locked by the cache-stats thread
# (CopyCacheDeleterRoleMap); the static's initialisation check is not
# instrumented, so TSan sees no order between the two. A race report with a frame in
# librocksdb is suppressed (mutex, deadlock and signal reports are not).
# Processes started by the tests inherit TSAN_OPTIONS (the cluster harness
# passes the environment on); a TSan binary run without them, e.g. by hand,
# has no suppressions and goes on after a report (halt_on_error=0).
TSAN_SUPPRESSIONS=$(cd "$BUILD_DIR" && pwd)/tsan.supp
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:history_size=4:suppressions=$TSAN_SUPPRESSIONS}
cat >"$TSAN_SUPPRESSIONS" <<'SUPP'
# Written by scripts/sanitize.sh: races inside uninstrumented RocksDB.
race:librocksdb.so
SUPP
start=$(date +%s)
ninja -C "$BUILD_DIR" -j"$JOBS"
built=$(date +%s)
echo "sanitize.sh $MODE: built in $(( built - start )) s"

cd "$BUILD_DIR"
rc=0
if [ "$MODE" = asan ]; then
  # Every test but those that run none of the project's C++ (NATS alone, the
  # cluster script against a stand-in server, configuration and docs
  # checks) and the cluster scenarios that repeat another one's code paths
  # (the fault scenarios keep leader_kill and deposed_leader, the partition
  # tests keep 2x2): under ASan the cluster tests take 11 of the 15 minutes.
  asan_exclude='^(cluster_nats_jetstream_three_nodes|cluster_script_up_down|cluster_deploy_templates'
  asan_exclude+='|cluster_fault_(nats_kill|replica_stop|new_replica)|cluster_partitions_3x1_map|cluster_republish_tail_wiped'
  asan_exclude+='|deploy_(prometheus_config|prometheus_config_compose|alert_rules_check|alert_rules_unit'
  asan_exclude+='|dashboards|files|systemd_verify|compose_config|compose_config_cluster|checkers_selftest)'
  asan_exclude+='|docs_.*)$'
  ctest --output-on-failure --timeout 900 -j "$CTEST_JOBS" -E "$asan_exclude" "$@" || rc=$?
else
  # Only what runs threads and sockets: the server/client integration tests
  # (labelled server and integration; the label regex takes either, since a
  # gtest_discover_tests LABELS list may reach CTest as its first item only),
  # the quickstart end to end (e2e), the CLI end to end against a real
  # server (CliE2e*, no label), the storage tests that read beside a
  # writer thread (queries; loan snapshots), and one partitioned cluster
  # (cluster_partitions_2x2: fan-out asking and answering, a partition
  # stopped and restarted; about 50 s; its harness fails on a sanitizer report in
  # any node's log, since a replica killed by one is replaced by failover).
  # The other cluster tests are left out for time; cluster_asker_test is
  # labelled integration, so the first ctest runs it.
  # Two hostile-client tests bound the server's RSS growth (256 MiB) while
  # it holds up to 64 MiB of frames; TSan's shadow memory (4x what the
  # program touches) pushes the growth to ~290 MiB, so they fail by
  # measurement, not by a race. Left out here until they skip the RSS bound
  # under TSan (they run, and pass, under ASan and in the normal build).
  tsan_exclude='^ServerHostile[.](LargeStalledFrames|PipeliningClientThatNeverReads)'
  ctest --output-on-failure --timeout 900 -j "$CTEST_JOBS" -L 'integration|server|e2e' \
    -E "$tsan_exclude" "$@" || rc=$?
  ctest --output-on-failure --timeout 900 -j "$CTEST_JOBS" \
    -R '^CliE2e|^StorageLedgerTest[.]QueriesNeverSeeHalfABatch$|^StorageLedgerSnapshotTest[.]BackgroundSnapshotsThenReopenGiveIdenticalAnswers$|^cluster_partitions_2x2$' \
    "$@" || rc=$?
fi
echo "sanitize.sh $MODE: tests ran in $(( $(date +%s) - built )) s (exit $rc)"
exit "$rc"
