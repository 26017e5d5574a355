#!/usr/bin/env bash
# Starts `muster serve` on a fresh data directory and runs the scim2-tester
# suite against it. Needs the Python virtual environment made by .ci/run
# (or: python3 -m venv .venv && .venv/bin/pip install -r scripts/requirements.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
muster=${MUSTER_BIN:-target/debug/muster}
data_dir=$(mktemp -d)
port=${CONFORMANCE_PORT:-18080}
trap 'kill $server_pid 2>/dev/null || true; rm -rf "$data_dir"' EXIT
token=$("$muster" token create --data-dir "$data_dir" --name conformance --scope admin)
MUSTER_LOG=warn "$muster" serve --data-dir "$data_dir" --listen "127.0.0.1:$port" >/dev/null &
server_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
"$python" scripts/conformance.py "http://127.0.0.1:$port/scim/v2" "$token"
