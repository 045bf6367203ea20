"""The `make run` stack under scripts/supervise.py survives its faults by itself.

The whole stack (gunicorn, the curation and training workers, rqcron, the RQ
scheduler) runs as real processes against a throwaway PostgreSQL cluster and a
private Redis, both of which the test stops and starts. Each child is killed
with SIGKILL in turn while ingest runs; then Redis, then PostgreSQL, is down
for a few seconds. Ingest answers 2xx all through the Redis outage, every
acknowledged event is stored once, and everything is curated within the sweep
interval plus the grace (plus restart time) after each fault, with no human
action.
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from curation import pipeline, runs
from curation.models import CurationRun
from tests.support import ROOT, factories
from tests.support.redis_server import start_redis, stop_redis
from tests.support.workers import free_port

SWEEP_INTERVAL_S = 5
SWEEP_GRACE_S = 2
BACKOFF_MAX_S = 2
# The stated bound is interval + grace once the processes are back; on a loaded
# 2-core machine a restarted Django process needs several seconds to start.
BOUND_S = SWEEP_INTERVAL_S + SWEEP_GRACE_S + BACKOFF_MAX_S + 40
CHILDREN = {
    "web": "gunicorn",
    "curation": "rqworker curation",
    "training": "rqworker training",
    "cron": "rqcron",
    "scheduler": "flywheel_site.scheduler",
}


def wait_for(check, *, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


# --- a PostgreSQL cluster of the test's own -----------------------------------


def _pg_bin() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if versions:
        return versions[-1].parent
    found = shutil.which("initdb")
    if not found:
        pytest.skip("no initdb on this machine")
    return Path(found).parent


def _as_pg(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.getuid() == 0 else args


class Cluster:
    def __init__(self):
        self.bin = _pg_bin()
        self.dir = Path(tempfile.mkdtemp(prefix="flywheel-stack-pg-"))
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/flywheel"
        if os.getuid() == 0:
            shutil.chown(self.dir, "postgres")
        self.dir.chmod(0o700)
        subprocess.run(
            [
                *_as_pg(
                    [str(self.bin / "initdb"), "-D", str(self.dir), "-U", "postgres", "-A", "trust"]
                ),
                "-E",
                "UTF8",
                "--no-locale",
            ],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [
                *_as_pg(
                    [str(self.bin / "pg_ctl"), "-D", str(self.dir), "-l", str(self.dir / "log")]
                ),
                "-w",
                "-t",
                "60",
                "-o",
                options,
                "start",
            ],
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        subprocess.run(
            _as_pg([str(self.bin / "pg_ctl"), "-D", str(self.dir), "-m", "fast", "stop"]),
            capture_output=True,
        )

    def psql(self, database: str, *args: str, **kwargs):
        return subprocess.run(
            [
                "psql",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-q",
                *args,
            ],
            check=True,
            capture_output=True,
            **kwargs,
        )


@pytest.fixture
def cluster(transactional_db):
    """A throwaway cluster with the schema of pytest-django's test database
    (migrating from scratch would take half a minute)."""
    db = connection.settings_dict
    schema = subprocess.run(
        [
            "pg_dump",
            "--schema-only",
            "--no-owner",
            "-h",
            db["HOST"],
            "-p",
            str(db["PORT"]),
            "-U",
            db["USER"],
            db["NAME"],
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "PGPASSWORD": db.get("PASSWORD") or ""},
    ).stdout
    assert b"CREATE TABLE public.curation_source" in schema, db["NAME"]
    pg = Cluster()
    try:
        pg.start()
        pg.psql("postgres", "-c", "CREATE DATABASE flywheel")
        pg.psql("flywheel", input=schema)
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(pg.dir, ignore_errors=True)


@pytest.fixture
def redis_port():
    port = free_port()
    start_redis(port)
    yield port
    stop_redis(port)


# --- the stack ----------------------------------------------------------------


def children_of(pid: int) -> dict[str, int]:
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) != pid:
            continue
        for name, marker in CHILDREN.items():
            if marker in cmdline:
                found[name] = int(entry.name)
    return found


class Ingest(threading.Thread):
    """Posts one edit about every 0.1 s and records what each answer was."""

    def __init__(self, base: str, token: str):
        super().__init__(daemon=True)
        self.base, self.token = base, token
        self.results: list[tuple[str, int | None, float]] = []
        self.stopping = threading.Event()
        self.n = 0

    def post(self) -> tuple[str, int | None]:
        self.n += 1
        event_id = f"stack-{self.n}"
        body = json.dumps(factories.edit(event_id=event_id)).encode()
        request = urllib.request.Request(  # noqa: S310
            self.base + "/api/v1/edits",
            data=body,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return event_id, response.status
        except urllib.error.HTTPError as error:
            return event_id, error.code
        except OSError:
            return event_id, None

    def run(self):
        while not self.stopping.is_set():
            event_id, status = self.post()
            self.results.append((event_id, status, time.monotonic()))
            time.sleep(0.1)

    def acked(self) -> list[str]:
        return [e for e, status, _ in self.results if status is not None and 200 <= status < 300]


@pytest.fixture
def stack(cluster, redis_port, tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": cluster.url,
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "DEBUG": "false",
        "FLYWHEEL_ALLOW_DEV_SECRET": "true",
        "FLYWHEEL_SWEEP_INTERVAL_S": str(SWEEP_INTERVAL_S),
        "FLYWHEEL_SWEEP_GRACE_S": str(SWEEP_GRACE_S),
        "FLYWHEEL_RESTART_BACKOFF_MAX_S": str(BACKOFF_MAX_S),
        "FLYWHEEL_TOXICITY_ALLOW_FALLBACK": "true",
        "FLYWHEEL_TOXICITY_CHECKPOINT": "",
        "FLYWHEEL_INGEST_RATE_LIMIT": "0",
        "FLYWHEEL_LOG_LEVEL": "WARNING",
    }
    made = subprocess.run(
        [sys.executable, "manage.py", "create_api_token", "stack", "ci", "--scopes", "ingest"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    log = (tmp_path / "supervise.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "scripts/supervise.py", "scripts/Procfile"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield proc, f"http://127.0.0.1:{port}", token, cluster, redis_port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
        print((tmp_path / "supervise.log").read_text()[-6000:])


def running_run(pg_url: str) -> int | None:
    with psycopg.connect(pg_url, connect_timeout=3) as conn:
        row = conn.execute(
            "SELECT id FROM curation_curationrun WHERE status = 'running' AND trigger = 'ingest'"
        ).fetchone()
    return row[0] if row else None


def curated(pg_url: str, event_ids: list[str]) -> int:
    with psycopg.connect(pg_url, connect_timeout=3) as conn:
        return conn.execute(
            "SELECT count(*) FROM curation_interaction "
            "WHERE event_id = ANY(%s) AND curation_state = 'done'",
            [event_ids],
        ).fetchone()[0]


def assert_all_curated(pg_url: str, ingest: Ingest, fault: str) -> float:
    acked = ingest.acked()
    started = time.monotonic()

    def done():
        with contextlib.suppress(psycopg.OperationalError):
            return curated(pg_url, acked) == len(acked)
        return False

    wait_for(done, timeout=BOUND_S, what=f"curation of {len(acked)} events after {fault}")
    return time.monotonic() - started


@pytest.mark.stack
def test_the_supervised_stack_recovers_from_every_fault_by_itself(stack):
    proc, base, token, pg, redis_port = stack
    begun = time.monotonic()
    ingest = Ingest(base, token)
    wait_for(lambda: ingest.post()[1] in (200, 201), timeout=120, what="the web process")
    wait_for(
        lambda: children_of(proc.pid).keys() == CHILDREN.keys(), timeout=30, what="every child"
    )
    ingest.start()
    took = {"startup": time.monotonic() - begun}
    try:
        for name in CHILDREN:
            old = children_of(proc.pid)[name]
            if name == "curation":
                # Best effort: kill it inside a job, with a run row open.
                deadline = time.monotonic() + 10
                while not running_run(pg.url) and time.monotonic() < deadline:
                    time.sleep(0.02)
            os.kill(old, signal.SIGKILL)
            wait_for(
                lambda name=name, old=old: children_of(proc.pid).get(name, old) != old,
                timeout=30,
                what=f"the supervisor to restart {name}",
            )
            took[name] = assert_all_curated(pg.url, ingest, f"kill -9 of {name}")

        # Redis down: every ingest answer in the meantime is a 2xx.
        stop_redis(redis_port)
        down_from = len(ingest.results)
        wait_for(lambda: len(ingest.results) - down_from >= 20, timeout=60, what="ingest")
        during = ingest.results[down_from:]
        start_redis(redis_port)
        assert [s for _, s, _ in during if not (s and 200 <= s < 300)] == []
        took["redis"] = assert_all_curated(pg.url, ingest, "the Redis outage")

        # PostgreSQL down: ingest may refuse, but nothing acknowledged is lost.
        pg.stop()
        down_from = len(ingest.results)
        wait_for(lambda: len(ingest.results) - down_from >= 10, timeout=60, what="ingest")
        pg.start()
        wait_for(
            lambda: any(s in (200, 201) for _, s, _ in ingest.results[down_from + 10 :]),
            timeout=60,
            what="ingest after PostgreSQL came back",
        )
        took["postgres"] = assert_all_curated(pg.url, ingest, "the PostgreSQL outage")
    finally:
        ingest.stopping.set()
        ingest.join(timeout=15)

    acked = ingest.acked()
    assert len(acked) > 50
    with psycopg.connect(pg.url) as conn:
        stored = dict(
            conn.execute(
                "SELECT event_id, count(*) FROM curation_interaction GROUP BY event_id"
            ).fetchall()
        )
    assert {e: stored.get(e) for e in acked} == dict.fromkeys(acked, 1)  # stored once each

    def runs_closed():
        with psycopg.connect(pg.url) as conn:
            return not conn.execute(
                "SELECT count(*) FROM curation_curationrun WHERE status = 'running'"
            ).fetchone()[0]

    wait_for(runs_closed, timeout=BOUND_S, what="every curation run row to be closed")
    print("seconds to curate everything after each fault:", took)

    # Ctrl-C stops every child, and nothing they forked is left behind.
    pids = children_of(proc.pid)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    assert [p for p in pids.values() if Path(f"/proc/{p}").exists()] == []


@pytest.mark.stack
def test_a_crashing_child_is_restarted_with_backoff_and_the_others_keep_running(tmp_path):
    marks = tmp_path / "starts"
    procfile = tmp_path / "Procfile"
    procfile.write_text(f"dies: sh -c 'echo start >> {marks}; exit 3'\nlives: sleep 300\n")
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts/supervise.py"), str(procfile)],
        env={**os.environ, "FLYWHEEL_RESTART_BACKOFF_MAX_S": "2"},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: marks.exists(), timeout=10, what="the first start")
        first = time.monotonic()
        lives = wait_for(lambda: _child_named(proc.pid, "sleep 300"), timeout=10, what="lives")
        wait_for(lambda: marks.read_text().count("start") >= 4, timeout=30, what="three restarts")
        # Backoff 1 s, 2 s, 2 s (capped): three restarts take at least 5 s.
        assert time.monotonic() - first >= 4.5
        assert _child_named(proc.pid, "sleep 300") == lives
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "dies exited with 3" in err and "restart 3 in 2s" in err
    assert not Path(f"/proc/{lives}").exists()


def _child_named(pid: int, marker: str) -> int | None:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and marker in cmdline:
                return int(entry.name)
    return None


@pytest.mark.django_db(transaction=True)
def test_the_sweeper_closes_a_run_as_soon_as_its_process_is_gone():
    """The bound is the sweep interval plus the grace, not the job timeout: a run
    is abandoned when its process's advisory lock is gone."""
    started = timezone.now() - timedelta(seconds=5)
    run = CurationRun.objects.create(trigger="ingest", status="running", started_at=started)
    db = settings.DATABASES["default"]
    worker = psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"], autocommit=True
    )
    worker.execute("SELECT pg_advisory_lock(%s, %s)", [runs.RUN_LOCK_SPACE, run.pk])
    backend = worker.execute("SELECT pg_backend_pid()").fetchone()[0]
    pipeline.sweep(grace_seconds=1)
    run.refresh_from_db()
    assert run.status == "running"  # its process still holds the lock

    worker.close()  # what kill -9 does to the process's connection
    # The server ends the backend (and frees its locks) after the client has gone: wait for
    # that, as the sweeper's next round would, rather than race it on a loaded machine.
    with connection.cursor() as cursor:
        for _ in range(100):
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [backend])
            if cursor.fetchone()[0] == 0:
                break
            time.sleep(0.05)
    pipeline.sweep(grace_seconds=1)
    run.refresh_from_db()
    assert (run.status, run.error) == ("failed", runs.ABANDONED)


@pytest.mark.django_db(transaction=True)
def test_a_run_in_progress_holds_its_lock_until_it_finishes():
    run = runs.run_start(trigger="command")
    run.started_at = timezone.now() - timedelta(seconds=60)
    run.save(update_fields=["started_at"])
    db = settings.DATABASES["default"]
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"]
    ) as other:
        held = other.execute(
            "SELECT pg_try_advisory_lock(%s, %s)", [runs.RUN_LOCK_SPACE, run.pk]
        ).fetchone()[0]
        assert held is False
        runs.run_finish(run=run)
        free = other.execute(
            "SELECT pg_try_advisory_lock(%s, %s)", [runs.RUN_LOCK_SPACE, run.pk]
        ).fetchone()[0]
        assert free is True
