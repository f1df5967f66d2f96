#!/usr/bin/env bash
# Run every test layer. pytest exits 5 when it collected nothing: that is a failure too.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
set +e
"$BIN/pytest" "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$status"
