#!/usr/bin/env bash
# `make run`: chalice local on $PORT with the embedded stack, its pid in build/run.pid
# so `make stop` (from another terminal) can end it. A port in use is one line naming
# PORT=, not chalice's traceback.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
PORT=${PORT:-8000}
if ! "$BIN/python" -c 'import socket, sys
with socket.socket() as probe:
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    probe.bind(("127.0.0.1", int(sys.argv[1])))' "$PORT" 2>/dev/null; then
  echo "port $PORT is in use (another make run? stop it with make stop), or choose another: make run PORT=8001" >&2
  exit 1
fi
mkdir -p build
echo $$ > build/run.pid
trap 'rm -f build/run.pid' EXIT
echo "starting chalice local on http://localhost:$PORT/ (stop: Ctrl-C here, or make stop)"
env -u AWS_PROFILE "$BIN/chalice" local --stage local --no-autoreload --port "$PORT"
