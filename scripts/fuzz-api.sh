#!/usr/bin/env bash
# Property-based fuzzing of Muster's HTTP API from its own OpenAPI description:
# starts `muster serve` on a fresh data directory (SQLite, or the PostgreSQL
# database MUSTER_DATABASE_URL names), then runs schemathesis against
# /openapi.json with an admin token. Fails on any 5xx answer, any response that
# is not what the description allows, or a server that is gone at the end.
# Needs the virtual environment made by .ci/run (scripts/requirements.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
schemathesis=${SCHEMATHESIS:-.venv/bin/schemathesis}
muster=${MUSTER_BIN:-target/debug/muster}
examples=${FUZZ_EXAMPLES:-25}
data_dir=$(mktemp -d)
trap 'kill $server_pid 2>/dev/null || true; rm -rf "$data_dir"' EXIT
token=$("$muster" token create --data-dir "$data_dir/db" --name fuzz --scope admin)
MUSTER_LOG=warn "$muster" serve --data-dir "$data_dir/db" --listen 127.0.0.1:0 \
  >"$data_dir/stdout" 2>"$data_dir/stderr" &
server_pid=$!
base_url=""
for _ in $(seq 1 100); do
  base_url=$(sed -n 's/^Muster SCIM base URL: //p' "$data_dir/stdout" | head -n 1)
  [ -n "$base_url" ] && curl -fsS "${base_url%/scim/v2}/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
[ -n "$base_url" ] || { echo "muster serve did not start" >&2; cat "$data_dir/stderr" >&2; exit 1; }
root=${base_url%/scim/v2}
status=0
"$schemathesis" run "$root/openapi.json" \
  --url "$root" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error \
  --max-examples "$examples" \
  --workers 1 \
  --no-color \
  --seed "${FUZZ_SEED:-1}" || status=$?
if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "muster serve is gone after the fuzzing run" >&2
  cat "$data_dir/stderr" >&2
  exit 1
fi
curl -fsS "$root/healthz" >/dev/null || { echo "muster serve stopped answering" >&2; exit 1; }
exit "$status"
