#!/usr/bin/env bash
# Start project-local PostgreSQL and Redis unless DATABASE_URL / REDIS_URL point
# at servers that already exist. Idempotent: a second call reuses running servers
# and the data under .run/. Prints nothing but errors and one status line each.
#   scripts/services.sh start | stop | env [REDIS_DB]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RUN="$ROOT/.run"
PG_PORT="${FLYWHEEL_PG_PORT:-25432}"
REDIS_PORT="${FLYWHEEL_REDIS_PORT:-26379}"
mkdir -p "$RUN"

die() { echo "services.sh: $*" >&2; exit 1; }

pg_bin() {
  if [ -d /usr/lib/postgresql ]; then
    local v; v="$(ls /usr/lib/postgresql | sort -V | tail -1)"
    [ -x "/usr/lib/postgresql/$v/bin/initdb" ] && { echo "/usr/lib/postgresql/$v/bin"; return; }
  fi
  command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return; }
  return 1
}

# The data dir must be reachable by the user the server runs as. As root we run
# it as `postgres` (initdb refuses root), and a checkout under /root is often not
# traversable by that user, so fall back to a per-checkout folder under /tmp.
pg_datadir() {
  local d="$RUN/pg"
  if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$RUN" 2>/dev/null; then
    d="${TMPDIR:-/tmp}/flywheel-pg-$(echo "$ROOT" | cksum | cut -d' ' -f1)"
  fi
  echo "$d"
}

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

install_hint() {
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing $*" >&2
    if ! apt-get install -y -q "$@" >/dev/null 2>&1; then
      apt-get update -q >/dev/null 2>&1 || true
      apt-get install -y -q "$@" >/dev/null || die "apt-get install $* failed"
    fi
  else
    die "please install $* (Debian/Ubuntu: apt-get install $*; macOS: brew install ${*/redis-server/redis})"
  fi
}

start_pg() {
  if [ -n "${DATABASE_URL:-}" ]; then echo "postgres: using DATABASE_URL"; return; fi
  local B; B="$(pg_bin)" || { install_hint postgresql; B="$(pg_bin)"; } || die "no initdb found"
  local D; D="$(pg_datadir)"
  mkdir -p "$D"
  [ "$(id -u)" = 0 ] && chown postgres: "$D" && chmod 700 "$D"
  if [ ! -f "$D/PG_VERSION" ]; then
    as_pg "$B/initdb" -D "$D" -U postgres -A trust -E UTF8 --no-locale >"$RUN/initdb.log" 2>&1 \
      || { cat "$RUN/initdb.log" >&2; die "initdb failed"; }
  fi
  local how="already running"
  if ! as_pg "$B/pg_ctl" -D "$D" status >/dev/null 2>&1; then
    how="started"
    as_pg "$B/pg_ctl" -D "$D" -l "$D/log" -w -t 60 \
      -o "-p $PG_PORT -k $D -c listen_addresses=127.0.0.1 -c fsync=${FLYWHEEL_PG_FSYNC:-on} -c max_connections=200" \
      start >/dev/null || { tail -20 "$D/log" >&2; die "postgres did not start (port $PG_PORT busy?)"; }
  fi
  for _ in $(seq 1 50); do
    psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -Atqc "select 1" >/dev/null 2>&1 && break
    sleep 0.2
  done
  if ! psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -Atqc \
      "select 1 from pg_database where datname='flywheel'" | grep -q 1; then
    psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -qc "CREATE DATABASE flywheel" >/dev/null
  fi
  echo "postgres: $how on 127.0.0.1:$PG_PORT (data $D)"
}

start_redis() {
  if [ -n "${REDIS_URL:-}" ]; then echo "redis: using REDIS_URL"; return; fi
  command -v redis-server >/dev/null 2>&1 || install_hint redis-server
  local how="already running"
  if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    how="started"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
      --pidfile "$RUN/redis.pid" --logfile "$RUN/redis.log" --dir "$RUN" >/dev/null
    for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 || die "redis did not start (port $REDIS_PORT busy?)"
  fi
  echo "redis: $how on 127.0.0.1:$REDIS_PORT"
}

# The stop paths go by what this project started (its pidfile, its data dir),
# not by DATABASE_URL / REDIS_URL: `services.sh env` exports those for the
# project's own servers too.
stop_redis() {
  local pid
  pid="$(cat "$RUN/redis.pid" 2>/dev/null)" || return 0
  if [ -n "$pid" ] && ps -o args= -p "$pid" 2>/dev/null | grep -q redis-server; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$RUN/redis.pid"
}

stop_pg() {
  local B D; B="$(pg_bin)" || return 0; D="$(pg_datadir)"
  [ -f "$D/postmaster.pid" ] && as_pg "$B/pg_ctl" -D "$D" -m fast stop >/dev/null 2>&1 || true
}

# The supervisor of a `make run` (scripts/supervise.py) stops its children on SIGTERM.
stop_app() {
  local pid file
  # `make run` supervises the web process, the workers and cron separately (it serves first).
  for file in "$RUN/supervise.pid" "$RUN/supervise-web.pid" "$RUN/supervise-cron.pid"; do
    pid="$(cat "$file" 2>/dev/null)" || continue
    # A stale pidfile's pid may belong to another process by now.
    if [ -n "$pid" ] && ps -o args= -p "$pid" 2>/dev/null | grep -q supervise.py \
        && kill "$pid" 2>/dev/null; then
      for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$file"
  done
}

stop_all() { stop_app; stop_redis; stop_pg; }

# The URLs the app should use: the user's own servers if set, else the local ones.
database_url() { echo "${DATABASE_URL:-postgres://postgres@127.0.0.1:$PG_PORT/flywheel}"; }
redis_url() { echo "${REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/${1:-0}}"; }

# Export lines a Makefile or shell can eval (no secret: tests use the dev secret).
print_env() {
  echo "export DATABASE_URL=$(database_url)"
  echo "export REDIS_URL=$(redis_url "${2:-0}")"
}

# KEY=VALUE lines manage.py and wsgi.py read for what the environment lacks, so the
# README's commands work in a fresh shell. The SECRET_KEY is made once and kept: the
# user-id HMAC and the sampling hash default to it.
write_env() {
  local file="${FLYWHEEL_ENV_FILE:-$RUN/env}" secret="" py=python3 tmp
  [ -n "${FLYWHEEL_ENV_FILE-x}" ] || return 0  # set but empty: no env file wanted
  [ -f "$file" ] && secret="$(sed -n 's/^SECRET_KEY=//p' "$file" | head -1)"
  [ -x "$ROOT/.venv/bin/python" ] && py="$ROOT/.venv/bin/python"
  [ -n "$secret" ] || secret="$("$py" -c 'import secrets; print(secrets.token_urlsafe(50))')"
  tmp="$(mktemp "$file.XXXXXX")"  # mode 600 from the start
  printf 'DATABASE_URL=%s\nREDIS_URL=%s\nSECRET_KEY=%s\n' \
    "$(database_url)" "$(redis_url 0)" "$secret" >"$tmp"
  chmod 600 "$tmp" && mv "$tmp" "$file"
}

case "${1:-start}" in
  start) start_pg; start_redis; write_env ;;
  stop) stop_all ;;
  stop-redis) stop_redis ;;
  stop-pg) stop_pg ;;
  env) print_env "$@" ;;
  *) die "usage: services.sh start|stop|stop-pg|stop-redis|env [REDIS_DB]" ;;
esac
