#!/usr/bin/env bash
# Installs every Debian bookworm package loanledger needs to build, test and
# run (docs/toolchain.md). Idempotent; needs root (or sudo).
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build git
  libboost-all-dev libssl-dev openssl zlib1g-dev libzstd-dev librocksdb-dev libflatbuffers-dev flatbuffers-compiler
  prometheus-cpp-dev libgtest-dev libbenchmark-dev
  libspdlog-dev nlohmann-json3-dev libcli11-dev libfmt-dev
  prometheus python3 clang-format-14 docker-compose
  nats-server libnats-dev rocksdb-tools libsystemd-dev
  chromium python3-pandas
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
