#!/usr/bin/env bash
# Run every test layer. pytest exits 5 when it collected nothing: that is a failure too.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
set +e
# One worker per core (TEST_WORKERS=N for N, 0 for this process alone), each taking whole files.
workers=${TEST_WORKERS:-auto}
if [ "$workers" = "0" ]; then
  "$BIN/pytest" "$@"
else
  "$BIN/pytest" -n "$workers" --dist loadfile --no-loadscope-reorder "$@"
fi
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$status"
