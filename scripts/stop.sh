#!/usr/bin/env bash
# `make stop`: end the `make run` whose pid build/run.pid holds (and its chalice local).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f build/run.pid ]; then
  echo "no make run to stop (build/run.pid is missing)"
  exit 0
fi
pid=$(cat build/run.pid)
if ! kill -0 "$pid" 2>/dev/null; then
  echo "make run (pid $pid) is not running any more"
  rm -f build/run.pid
  exit 0
fi
pkill -TERM -P "$pid" 2>/dev/null || true   # chalice local, the child of run.sh
kill -TERM "$pid" 2>/dev/null || true
for _ in $(seq 1 50); do
  kill -0 "$pid" 2>/dev/null || { echo "stopped make run (pid $pid)"; exit 0; }
  sleep 0.1
done
echo "make run (pid $pid) did not stop within 5 s; killing it" >&2
pkill -KILL -P "$pid" 2>/dev/null || true
kill -KILL "$pid" 2>/dev/null || true
rm -f build/run.pid
