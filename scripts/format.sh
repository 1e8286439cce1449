#!/usr/bin/env bash
# clang-format (Google base, 100 columns: .clang-format) over every C++ file
# in git. The README's test command runs the check first (STYLE.md).
#
#   scripts/format.sh           reformats the files in place
#   scripts/format.sh --check   lists the files that differ; exit 1 if any
#
# Environment: CLANG_FORMAT (clang-format-14, installed by install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
CLANG_FORMAT=${CLANG_FORMAT:-clang-format-14}
mode=${1:-}
if [ -n "$mode" ] && [ "$mode" != --check ]; then
  echo "usage: scripts/format.sh [--check]" >&2
  exit 1
fi
if ! command -v "$CLANG_FORMAT" >/dev/null; then
  echo "format.sh: $CLANG_FORMAT not found (scripts/install-deps.sh installs it)" >&2
  exit 1
fi
mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.cc' '*.h')
if [ "$mode" != --check ]; then
  "$CLANG_FORMAT" -i --style=file "${files[@]}"
  echo "format.sh: formatted ${#files[@]} files"
  exit 0
fi
differ=()
for f in "${files[@]}"; do
  if ! "$CLANG_FORMAT" --style=file --dry-run --Werror "$f" >/dev/null 2>&1; then differ+=("$f"); fi
done
if [ ${#differ[@]} -gt 0 ]; then
  echo "format.sh: ${#differ[@]} of ${#files[@]} files are not clang-formatted (run scripts/format.sh):" >&2
  printf '  %s\n' "${differ[@]}" >&2
  exit 1
fi
echo "format.sh: all ${#files[@]} files clang-formatted"
