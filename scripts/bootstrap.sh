#!/usr/bin/env bash
# Create .venv and install requirements.txt; skipped when nothing changed.
# Installs the system packages the project needs on Debian (as root) when missing.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"

need_apt=()
command -v redis-server >/dev/null 2>&1 || [ -n "${REDIS_URL:-}" ] || need_apt+=(redis-server)
if [ -z "${DATABASE_URL:-}" ] && [ ! -d /usr/lib/postgresql ] && ! command -v initdb >/dev/null 2>&1; then
  need_apt+=(postgresql)
fi
command -v psql >/dev/null 2>&1 || need_apt+=(postgresql-client)
if [ "${FLYWHEEL_SKIP_BROWSER:-0}" != 1 ] && ! command -v chromium >/dev/null 2>&1; then
  need_apt+=(chromium)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "bootstrap: apt-get install ${need_apt[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}" >/dev/null
  else
    echo "bootstrap: please install: ${need_apt[*]} (Debian/Ubuntu names; on macOS: brew install postgresql redis chromium)" >&2
    exit 1
  fi
fi

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want="$(sha256sum requirements.txt | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: installing requirements (first run takes about 2 minutes)"
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
  if .venv/bin/pip list 2>/dev/null | grep -qi '^nvidia'; then
    echo "bootstrap: CUDA packages were pulled in; torch must stay pinned in requirements.txt" >&2
    exit 1
  fi
  echo "$want" >"$stamp"
fi
