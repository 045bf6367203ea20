#!/usr/bin/env bash
# `make run`: migrate, load demo data once, then serve the app under gunicorn
# with an RQ worker (and its scheduler). Ctrl-C stops everything started here;
# the services keep their data under .run/ for the next `make run`.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
status="$(scripts/services.sh start)"
echo "$status"
eval "$(scripts/services.sh env)"
export DEBUG="${DEBUG:-true}"
# No Detoxify weights can be downloaded here: unless a local checkpoint is set,
# the demo lets the lighter offline classifier decide (shown as a warning).
if [ -z "${FLYWHEEL_TOXICITY_CHECKPOINT:-}" ]; then
  export FLYWHEEL_TOXICITY_ALLOW_FALLBACK="${FLYWHEEL_TOXICITY_ALLOW_FALLBACK:-true}"
fi
PY=.venv/bin/python
PORT="${PORT:-8000}"

$PY manage.py migrate --noinput >/dev/null
$PY manage.py collectstatic --noinput >/dev/null
$PY manage.py load_demo

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "stopping web and worker"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  # Stop only the services this run started; leave ones that were already up.
  if grep -q "^redis: started" <<<"$status"; then scripts/services.sh stop-redis; fi
  if grep -q "^postgres: started" <<<"$status"; then scripts/services.sh stop-pg; fi
}
trap cleanup INT TERM EXIT

# SimpleWorker runs jobs in the worker process itself, so the toxicity model is
# loaded once per worker rather than once per forked job.
$PY manage.py rqworker curation default --with-scheduler --worker-class rq.worker.SimpleWorker &
pids+=($!)
$PY manage.py rqworker training &
pids+=($!)
$PY manage.py rqcron flywheel_site.cron &
pids+=($!)
.venv/bin/gunicorn flywheel_site.wsgi:application --bind "127.0.0.1:$PORT" \
  --workers "${WEB_CONCURRENCY:-3}" --access-logfile - --log-level warning &
pids+=($!)
echo "Flywheel is running on http://127.0.0.1:$PORT/ (Ctrl-C stops it)"
wait -n "${pids[@]}"
