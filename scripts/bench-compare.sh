#!/usr/bin/env bash
# Measures Muster and the Python scim2-server side by side in one run of
# muster-loadbench (issue 4, performance): installs scim2-server into
# .venv-bench, starts it on a free loopback port, builds muster and
# muster-loadbench in release, and runs the benchmark, which starts
# `muster serve` itself on a fresh database.
#
# Usage: scripts/bench-compare.sh [muster-loadbench options...]
#   e.g. scripts/bench-compare.sh --users 2000 --group-size 1000   (a quick run)
#        scripts/bench-compare.sh                                  (the full 100,000-user run)
#        scripts/bench-compare.sh --custom-attributes 20           (issue 5 phases too: Muster
#          only, since scim2-server has no admin API to declare a schema; it runs the six
#          plain phases and the report says so)
# Environment: PYTHON (default python3), BENCH_VENV (default .venv-bench),
#   MUSTER_BIN (default target/release/muster), BENCH_NO_BUILD=1 to skip cargo build.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
venv=${BENCH_VENV:-.venv-bench}
muster=${MUSTER_BIN:-target/release/muster}

if [ ! -x "$venv/bin/scim2-server" ]; then
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet scim2-server
fi

if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  cargo build --release --bin muster --bin muster-loadbench
fi

port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp -t scim2-server.XXXXXX.log)
"$venv/bin/scim2-server" --hostname 127.0.0.1 --port "$port" >"$log" 2>&1 &
py_pid=$!
trap 'kill "$py_pid" 2>/dev/null || true; rm -f "$log"' EXIT

# scim2-server accepts every request when started without --bearer-token.
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/v2/ServiceProviderConfig" >/dev/null 2>&1 && break
  if ! kill -0 "$py_pid" 2>/dev/null; then
    echo "scim2-server exited; its log:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 0.1
done

target/release/muster-loadbench \
  --muster-bin "$muster" \
  --compare-url "http://127.0.0.1:$port/v2" \
  --compare-pid "$py_pid" \
  --compare-name scim2-server \
  "$@"
