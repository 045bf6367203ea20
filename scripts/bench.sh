#!/usr/bin/env bash
# `make bench`: run each benchmark listed below that exists, one after the other
# (they would compete for the same 2 cores), and print each one's JSON object on
# stdout; progress goes to stderr. A benchmark is `bench/<name>.py` with a
# `main()` that prints one JSON object (bench/common.py has the helpers).
# Benchmarks use their own database (flywheel_bench) and Redis database 2,
# never the dev data. `scripts/bench.sh ingest pii` runs only those.
# Figures and the commands that produced them: bench/RESULTS.md.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
if [ -z "${DATABASE_URL:-}" ] || [ -z "${REDIS_URL:-}" ]; then
  eval "$(scripts/services.sh env)"
fi
export DATABASE_URL REDIS_URL
PY=.venv/bin/python

BENCHES=(ingest curation curation_inbox curation_workers curation_scale toxicity_runtime review export pii metrics audit_log scrape reads_scale markdown)
[ "$#" -gt 0 ] && BENCHES=("$@")

failed=()
for name in "${BENCHES[@]}"; do
  file="bench/$name.py"
  if [ ! -f "$file" ]; then
    echo "bench.sh: $file not there yet, skipped" >&2
    continue
  fi
  if ! grep -q '^def main(' "$file"; then
    echo "bench.sh: $file has no main(), skipped" >&2
    continue
  fi
  echo "bench.sh: running $file" >&2
  if ! "$PY" "$file"; then
    echo "bench.sh: $file failed" >&2
    failed+=("$name")
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "bench.sh: failed: ${failed[*]}" >&2
  exit 1
fi
