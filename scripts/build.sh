#!/usr/bin/env bash
# Configures and builds loanledger into build/ (Release by default).
#   BUILD_DIR=build BUILD_TYPE=Release WERROR=ON scripts/build.sh [ninja targets...]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
BUILD_TYPE=${BUILD_TYPE:-Release}
WERROR=${WERROR:-ON}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" \
  -DLOANLEDGER_WERROR="$WERROR" ${CMAKE_ARGS:-} >/dev/null
ninja -C "$BUILD_DIR" "$@"
