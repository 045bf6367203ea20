#!/usr/bin/env bash
# Times what a newcomer waits for (issue 22): `make run` on a fresh clone, from its start to
# the first page answering, and to a finished demo (its training cycles done, which
# `load_demo --wait` announces as "The demo is loaded"). The install (`make setup`) is timed
# on its own before it, so the figures after it are about the app, not about pip.
#
#   scripts/time_first_page.sh [CLONE_DIR]
#
# Clones this checkout's HEAD into CLONE_DIR (default: a new temporary directory), runs
# `make run` there on ports of its own, prints the three figures and the load average, then
# stops everything it started and removes the clone (KEEP=1 keeps it, with make-run.log).
# Environment:
#   PORT, FLYWHEEL_PG_PORT, FLYWHEEL_REDIS_PORT  the clone's ports (defaults 18444, 25494,
#       26394: away from `make run`'s own defaults, so a running Flywheel is left alone)
#   FLYWHEEL_VENV  an existing virtualenv to link as the clone's .venv, skipping the install
#       (then the first figure is the check that nothing needs installing)
#   TIMEOUT_S      give up after this many seconds of `make run` (default 3600)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="${1:-$(mktemp -d -t flywheel-first-page.XXXXXX)}"
# A fresh clone makes its own database, Redis and secret under its .run/: none inherited.
unset DATABASE_URL REDIS_URL SECRET_KEY DJANGO_SETTINGS_MODULE
export PORT="${PORT:-18444}"
export FLYWHEEL_PG_PORT="${FLYWHEEL_PG_PORT:-25494}"
export FLYWHEEL_REDIS_PORT="${FLYWHEEL_REDIS_PORT:-26394}"
TIMEOUT_S="${TIMEOUT_S:-3600}"
URL="http://127.0.0.1:$PORT/login/"

if curl -fs -o /dev/null "$URL"; then
  echo "time_first_page: something already answers on $URL; set PORT" >&2
  exit 1
fi
VENV=""
if [ -n "${FLYWHEEL_VENV:-}" ]; then VENV="$(cd "$FLYWHEEL_VENV" && pwd -P)"; fi
# Traversable, so that the postgres user keeps the clone's cluster inside it (services.sh).
mkdir -p "$DIR" && chmod 755 "$DIR"
git clone --quiet "$ROOT" "$DIR"
cd "$DIR"
if [ -n "$VENV" ]; then ln -s "$VENV" .venv; fi

run_pid=""
finish() {
  trap - INT TERM EXIT
  if [ -n "$run_pid" ]; then
    # make, run.sh and its supervisors share the process group setsid gave them; run.sh's
    # own trap then stops the supervised processes and the services it started.
    kill -TERM -- "-$run_pid" 2>/dev/null || true
    wait "$run_pid" 2>/dev/null || true
  fi
  if [ "${KEEP:-0}" = 1 ]; then echo "clone kept: $DIR"; else rm -rf "$DIR"; fi
}
trap finish INT TERM EXIT

started=$(date +%s.%N)
make --no-print-directory setup >setup.log 2>&1 || { cat setup.log >&2; exit 1; }
install_s=$(echo "$(date +%s.%N) - $started" | bc)

started=$(date +%s.%N)
setsid make --no-print-directory run >make-run.log 2>&1 &
run_pid=$!
first_page_s=""
while :; do
  elapsed=$(echo "$(date +%s.%N) - $started" | bc)
  if [ -z "$first_page_s" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL")" = 200 ]; then
    first_page_s=$elapsed
    # Whether the page said the demo was still loading is what the browser test checks
    # (tests/browser/test_training_demo.py); here only the time.
    printf 'first page after %.0f s\n' "$first_page_s"
  fi
  if grep -q "The demo is loaded" make-run.log; then break; fi
  if ! kill -0 "$run_pid" 2>/dev/null; then
    tail -30 make-run.log >&2
    echo "time_first_page: make run stopped before the demo was loaded" >&2
    exit 1
  fi
  if [ "$(echo "$elapsed >= $TIMEOUT_S" | bc)" = 1 ]; then
    echo "time_first_page: no finished demo after $TIMEOUT_S s" >&2
    exit 1
  fi
  sleep 1
done
demo_s=$(echo "$(date +%s.%N) - $started" | bc)
printf 'install (make setup): %.0f s\n' "$install_s"
printf 'make run -> first page: %.0f s\n' "$first_page_s"
printf 'make run -> demo finished: %.0f s (%s)\n' "$demo_s" "$(grep -m1 'The demo is loaded' make-run.log)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
