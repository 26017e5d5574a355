#!/usr/bin/env bash
# The admin console in a real browser (tests/browser): Playwright (Python) drives Debian's
# Chromium against real `muster serve` processes; axe-core checks every page; screenshots go
# to docs/screenshots/. `--perf` (or MUSTER_BROWSER_PERF=1) adds the 100,000-user run
# (a `muster import` fill of a minute or two, then every page timed to first paint).
# Needs target/debug/muster (built here when missing; MUSTER_BIN names another).
# Never runs `playwright install`: the browser is /usr/bin/chromium (MUSTER_CHROMIUM).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--perf" ]; then export MUSTER_BROWSER_PERF=1; shift; fi

chromium=${MUSTER_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
  if command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
  [ -x "$chromium" ] || { echo "no Chromium at $chromium (apt-get install chromium)" >&2; exit 1; }
fi
export MUSTER_CHROMIUM="$chromium"
echo "browser: $("$chromium" --version 2>/dev/null || echo "$chromium")"

venv=.venv-browser
if [ ! -x "$venv/bin/python" ]; then python3 -m venv "$venv"; fi
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 "$venv/bin/pip" install --quiet --disable-pip-version-check \
  -r tests/browser/requirements.txt

if [ -z "${MUSTER_BIN:-}" ]; then
  cargo build --quiet --bin muster
fi
export MUSTER_SCREENSHOTS=${MUSTER_SCREENSHOTS:-$PWD/docs/screenshots}
exec "$venv/bin/python" -m pytest tests/browser -p no:cacheprovider -q "$@"
