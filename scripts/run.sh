#!/usr/bin/env bash
# `make run`: migrate, load demo data once, then keep gunicorn, the RQ workers,
# the cron process and the RQ scheduler running under scripts/supervise.py (a
# child that dies is restarted with backoff). Ctrl-C stops everything started
# here; the services keep their data under .run/ for the next `make run`.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
status="$(scripts/services.sh start)"
echo "$status"
eval "$(scripts/services.sh env)"
if [ -f .run/env ]; then set -a; . .run/env; set +a; fi
export DEBUG="${DEBUG:-false}"
# No Detoxify weights can be downloaded here: unless a local checkpoint is set,
# the demo lets the lighter offline classifier decide (shown as a warning).
if [ -z "${FLYWHEEL_TOXICITY_CHECKPOINT:-}" ]; then
  export FLYWHEEL_TOXICITY_ALLOW_FALLBACK="${FLYWHEEL_TOXICITY_ALLOW_FALLBACK:-true}"
fi
# Training prints progress bars (datasets' map, TRL's tokenising) and tokenizer advice meant
# for a notebook; in this log they bury what the app says. Progress shows on the runs page.
export HF_DATASETS_DISABLE_PROGRESS_BARS=1 HF_HUB_DISABLE_PROGRESS_BARS=1
export TRANSFORMERS_VERBOSITY=error TRANSFORMERS_NO_ADVISORY_WARNINGS=1 TOKENIZERS_PARALLELISM=false
# transformers' deprecation notices (FutureWarning) are for its callers' next upgrade, not
# for someone watching the demo.
export PYTHONWARNINGS="${PYTHONWARNINGS:-ignore::FutureWarning}"
PY=.venv/bin/python
export PORT="${PORT:-8000}"
# Prometheus multiprocess mode: every gunicorn worker (and worker process) writes its
# counters here and /metrics adds them up. Emptied at each start: files of processes
# from an earlier run would be counted again.
export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-$ROOT/.run/prometheus}"
mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
rm -f "$PROMETHEUS_MULTIPROC_DIR"/*.db

cleanup() {
  trap - INT TERM EXIT
  # Stop only the services this run started; leave ones that were already up.
  if grep -q "^redis: started" <<<"$status"; then scripts/services.sh stop-redis; fi
  if grep -q "^postgres: started" <<<"$status"; then scripts/services.sh stop-pg; fi
}
trap cleanup INT TERM EXIT

$PY manage.py migrate --noinput >/dev/null
$PY manage.py collectstatic --noinput >/dev/null

# Serve first: the web process starts now, the demo loads behind it. The workers and the
# scheduler wait for `load_demo` to finish its simulated weeks (a curation sweep would
# otherwise curate the demo's traffic at today's date under it); its training cycles then go
# on in the training worker, and every page says how far they are. The periodic jobs (cron)
# start once those are done: the cycles' runs are stamped in the simulated weeks, and the
# check for dead runs would take one started "weeks ago" for a run whose worker died.
mkdir -p .run
grep -E '^web:' scripts/Procfile >.run/Procfile.web
grep -vE '^(web|cron):' scripts/Procfile >.run/Procfile.workers
grep -E '^cron:' scripts/Procfile >.run/Procfile.cron
# In the background so that a SIGTERM to this script reaches the supervisors too
# (bash runs traps only once a foreground command has returned).
$PY scripts/supervise.py --pidfile .run/supervise-web.pid .run/Procfile.web &
web=$!
workers=""
cron=""
stop_supervisors() {
  for pid in $cron $workers $web; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in $cron $workers $web; do wait "$pid" 2>/dev/null || true; done
}
trap 'stop_supervisors; cleanup' INT TERM EXIT
echo "Flywheel is running on http://127.0.0.1:$PORT/ (Ctrl-C stops it); the demo is loading."
$PY manage.py load_demo --background
$PY scripts/supervise.py --pidfile .run/supervise.pid .run/Procfile.workers &
workers=$!
$PY manage.py load_demo --wait
$PY scripts/supervise.py --pidfile .run/supervise-cron.pid .run/Procfile.cron &
cron=$!
wait "$web" "$workers" "$cron" || true
