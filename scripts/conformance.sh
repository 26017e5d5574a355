#!/usr/bin/env bash
# Starts `muster serve` on a fresh data directory and a free port, and runs the
# scim2-tester suite against it. With MUSTER_DATABASE_URL set (an empty
# PostgreSQL database), the server runs on that database instead of SQLite. Needs the Python virtual environment made by
# .ci/run (or: python3 -m venv .venv && .venv/bin/pip install -r scripts/requirements.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
muster=${MUSTER_BIN:-target/debug/muster}
data_dir=$(mktemp -d)
trap 'kill $server_pid 2>/dev/null || true; rm -rf "$data_dir"' EXIT
token=$("$muster" token create --data-dir "$data_dir/db" --name conformance --scope admin)
# Port 0: the system picks a free port; the server prints its base URL.
MUSTER_LOG=warn "$muster" serve --data-dir "$data_dir/db" --listen "127.0.0.1:${CONFORMANCE_PORT:-0}" \
  >"$data_dir/stdout" &
server_pid=$!
base_url=""
for _ in $(seq 1 100); do
  base_url=$(sed -n 's/^Muster SCIM base URL: //p' "$data_dir/stdout" | head -n 1)
  [ -n "$base_url" ] && curl -fsS "${base_url%/scim/v2}/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
[ -n "$base_url" ] || { echo "muster serve did not start" >&2; exit 1; }
"$python" scripts/conformance.py "$base_url" "$token"
