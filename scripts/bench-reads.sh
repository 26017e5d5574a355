#!/usr/bin/env bash
# Issue 15, target 1: GET /Users/{id} against a static axum response of the
# same size, in one run, under wrk (Debian's `wrk`).
#
# Starts `muster serve` on a fresh data directory (durable SQLite), creates
# USERS users, saves one user's body, starts `static-reference` answering
# that body to every GET, and runs wrk against both, alternately, ROUNDS
# times; prints requests/s of each and the ratio, plus Muster's CPU time
# per GET (from /proc).
#
# Usage: scripts/bench-reads.sh        Environment: USERS (300), CONNECTIONS (32),
#   THREADS (2), SECONDS (10), ROUNDS (2), BENCH_NO_BUILD=1 to skip cargo build.
set -euo pipefail
cd "$(dirname "$0")/.."
users=${USERS:-300}
connections=${CONNECTIONS:-32}
threads=${THREADS:-2}
seconds=${SECONDS_PER_RUN:-10}
rounds=${ROUNDS:-2}

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  cargo build --release --bin muster --bin static-reference
fi

work=$(mktemp -d -t muster-bench-reads.XXXXXX)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
muster_port=$(free_port)
static_port=$(free_port)
token=$(target/release/muster token create --name bench --data-dir "$work/data")
target/release/muster serve --listen "127.0.0.1:$muster_port" --data-dir "$work/data" \
  --client-rate-limit off 2>"$work/muster.log" &
muster_pid=$!
pids+=("$muster_pid")
base="http://127.0.0.1:$muster_port/scim/v2"
for _ in $(seq 1 100); do curl -fsS "$base/ServiceProviderConfig" >/dev/null 2>&1 && break; sleep 0.1; done

python3 - "$base" "$token" "$users" "$work/ids" "$work/body.json" <<'PY'
import json, sys, urllib.request
base, token, users, ids_path, body_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
headers = {"Authorization": "Bearer " + token, "Content-Type": "application/scim+json"}
ids = []
for n in range(users):
    user = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "userName": f"agent{n:06}@contoso.example", "externalId": f"ext-{n:06}",
        "name": {"givenName": "Agent", "familyName": f"Number{n}", "formatted": f"Agent Number{n}"},
        "displayName": f"Agent Number{n}", "active": True, "title": "Contact center agent",
        "emails": [{"value": f"agent{n:06}@contoso.example", "type": "work", "primary": True}],
        "phoneNumbers": [{"value": f"+1 555 01{n:04}", "type": "work"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": f"{n:06}", "department": "Customer care", "costCenter": "CC-42"},
    }
    request = urllib.request.Request(base + "/Users", data=json.dumps(user).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(request) as answer:
        ids.append(json.load(answer)["id"])
open(ids_path, "w").write("\n".join(ids) + "\n")
request = urllib.request.Request(base + "/Users/" + ids[0], headers=headers)
with urllib.request.urlopen(request) as answer:
    open(body_path, "wb").write(answer.read())
PY
echo "user body: $(wc -c <"$work/body.json") bytes"

target/release/static-reference --listen "127.0.0.1:$static_port" --body "$work/body.json" &
pids+=("$!")
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$static_port/" >/dev/null 2>&1 && break; sleep 0.1; done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rate() { awk '/Requests\/sec/ {print $2}'; }
export IDS_FILE="$work/ids" TOKEN="$token"
for round in $(seq 1 "$rounds"); do
  before=$(cpu_ticks "$muster_pid")
  muster_out=$(wrk -t"$threads" -c"$connections" -d"${seconds}s" -s scripts/wrk/get-by-id.lua "http://127.0.0.1:$muster_port")
  after=$(cpu_ticks "$muster_pid")
  static_out=$(wrk -t"$threads" -c"$connections" -d"${seconds}s" "http://127.0.0.1:$static_port/scim/v2/Users/x")
  muster_rate=$(rate <<<"$muster_out")
  static_rate=$(rate <<<"$static_out")
  grep -q "non-2xx or errors: 0" <<<"$muster_out" || { echo "Muster answered errors:"; echo "$muster_out"; exit 1; }
  python3 - "$round" "$muster_rate" "$static_rate" "$before" "$after" "$(getconf CLK_TCK)" "$seconds" <<'PY'
import sys
round_, muster, static, before, after, hz, seconds = sys.argv[1:]
muster, static = float(muster), float(static)
cpu_us = (int(after) - int(before)) / int(hz) / (muster * float(seconds)) * 1e6
print(f"round {round_}: Muster GET by id {muster:,.0f} req/s, static axum {static:,.0f} req/s, "
      f"ratio {muster / static:.0%}; Muster CPU per GET {cpu_us:.1f} us")
PY
done
