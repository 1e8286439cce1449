#!/usr/bin/env bash
# The README's test command: installs what is missing, checks the C++ files
# are clang-formatted (scripts/format.sh --check), builds (warnings are
# errors) and runs every test suite with CTest; then the whole suite again
# under ASan + UBSan, and the server/client tests under ThreadSanitizer
# (scripts/sanitize.sh), and each libFuzzer target for 15 s (scripts/fuzz.sh,
# clang; tests/RELIABILITY.md). About 40 minutes on a fresh 2-core machine.
# SKIP_SANITIZERS=1 runs only the first pass (a quick loop); SKIP_FUZZ=1
# skips the fuzzers.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/format.sh --check
scripts/build.sh
(cd "${BUILD_DIR:-build}" && ctest --output-on-failure --timeout 600 -j "$(nproc)" "$@")
if [ "${SKIP_SANITIZERS:-0}" != 1 ]; then
  BUILD_DIR= scripts/sanitize.sh asan
  BUILD_DIR= scripts/sanitize.sh tsan
fi
if [ "${SKIP_SANITIZERS:-0}" != 1 ] && [ "${SKIP_FUZZ:-0}" != 1 ]; then
  BUILD_DIR= scripts/fuzz.sh 15
fi
