"""Single edits handed to curation one RQ job each (as before the curation inbox) vs through the
inbox (curation/ingest_queue.py): jobs queued, curation runs, and how long one in-process RQ
worker takes to curate them.

Run: `.venv/bin/python bench/curation_inbox.py` with DATABASE_URL and REDIS_URL set
(`eval "$(scripts/services.sh env)"`). `--edits` single edits per round (400), `--rounds`
rounds (2), each running both modes. Events go through the whole WSGI stack in this process,
into `flywheel_bench_inbox`, with the scorer `make run` uses. Progress on stderr, one JSON
object on stdout. Figures: bench/RESULTS.md ("The curation inbox").
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    TrafficFactory,
    bench_database_url,
    bench_redis_url,
    create_token,
    emit,
    ensure_database,
    log,
    machine,
    make_run_scorer_env,
    migrate,
    redis_clear,
    rounded,
    service_urls,
)

BENCH_DB = "flywheel_bench_inbox"
MODES = ("per_event_jobs", "inbox")


def _post(handler, token: str, body: bytes) -> None:
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/v1/edits",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "HTTP_HOST": "localhost",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_AUTHORIZATION": f"Bearer {token}",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    statuses = []
    b"".join(handler(environ, lambda status, headers, exc=None: statuses.append(status)))
    if not statuses[0].startswith("201"):
        raise RuntimeError(f"an edit was answered {statuses[0]}")


def _round(*, mode: str, edits: int, handler, token: str, factory, redis_url: str) -> dict:
    import django_rq
    from django_rq.jobs import get_job_class
    from rq import SimpleWorker

    from curation import ingest_queue, services
    from curation.models import CurationRun, Interaction

    # The code before the inbox, in place: every write enqueued its ids as jobs.
    per_event = mode == "per_event_jobs"
    services.curation_hand_over = (
        ingest_queue.curation_enqueue if per_event else ingest_queue.curation_hand_over
    )
    redis_clear(url=redis_url)
    last_run = CurationRun.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    bodies = [json.dumps(factory.edit()).encode() for _ in range(edits)]
    started, cpu = time.perf_counter(), time.process_time()
    for body in bodies:
        _post(handler, token, body)
    ingest_s, ingest_cpu = time.perf_counter() - started, time.process_time() - cpu
    jobs = django_rq.get_queue("curation").count
    started = time.perf_counter()
    SimpleWorker(
        [django_rq.get_queue("curation")],
        connection=django_rq.get_connection("curation"),
        job_class=get_job_class(),
    ).work(burst=True)
    curate_s = time.perf_counter() - started
    pending = Interaction.objects.filter(curation_state="pending").count()
    if pending:
        raise RuntimeError(f"{pending} interactions were left pending")
    return {
        "jobs": jobs,
        "runs": CurationRun.objects.filter(pk__gt=last_run).count(),
        "ingest_ms_per_edit": rounded(ingest_s / edits * 1000, 2),
        "ingest_cpu_ms_per_edit": rounded(ingest_cpu / edits * 1000, 2),
        "curate_s": rounded(curate_s, 2),
        "curated_per_s": rounded(edits / curate_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edits", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    base_db, base_redis = service_urls()
    db_url = bench_database_url(base_url=base_db, name=BENCH_DB)
    redis_url = bench_redis_url(base_url=base_redis)
    env = make_run_scorer_env(database_url=db_url, redis_url=redis_url)
    ensure_database(url=db_url)
    log(f"migrating {BENCH_DB}")
    migrate(env=env)
    token = create_token(env=env, source="inbox")
    os.environ.update(env)
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE curation_interaction, curation_feedback RESTART IDENTITY CASCADE")
    handler = WSGIHandler()
    factory = TrafficFactory(seed=11)
    results: dict[str, list[dict]] = {mode: [] for mode in MODES}
    for index in range(args.rounds):
        for mode in MODES:
            result = _round(
                mode=mode,
                edits=args.edits,
                handler=handler,
                token=token,
                factory=factory,
                redis_url=redis_url,
            )
            log(f"round {index + 1}/{args.rounds}, {mode}: {result}")
            results[mode].append(result)
    redis_clear(url=redis_url)
    emit({"bench": "curation_inbox", "machine": machine(), "edits": args.edits, **results})


if __name__ == "__main__":
    main()
