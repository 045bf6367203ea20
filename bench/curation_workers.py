"""Curation throughput with 2 RQ worker processes vs 1, and the share of a chunk's wall
time another worker could have to wait for (issue 21 §1).

Run: `make bench`, or `.venv/bin/python bench/curation_workers.py` with DATABASE_URL and
REDIS_URL set (`eval "$(scripts/services.sh env)"`). Prints one JSON object on stdout;
progress goes to stderr. Figures and how to read them: bench/RESULTS.md.

On its own `flywheel_bench_workers` database: the edited interactions of bench/curation.py
(40-word answers, about 4% planted exact and near duplicates), curated from scratch by real
`rqworker` processes (`bench/timed_curation_worker.py`) taking one job per chunk, once
with 1 worker and once with 2, interleaved (1 2 1 2 ...) because the machine is shared;
medians are reported with the load average. Two scorers: the one `make run` uses (the
offline alt-profanity-check fallback) and a bert-base-sized Detoxify model with random
weights (bench/build_detoxify.py). Each worker gets one math thread (`--torch-threads`), as
a worker per core would: with two threads, one worker already runs its inference on both
cores of this machine and a second has none left to scale onto.

Wall time is from the first run row's start to the last one's end (workers load the model
before taking jobs, as a long-running worker has). The lock share: a chunk holds the one
dedup lock (`curation.candidates.dedup_keys_lock`) from being granted it, after its writes,
to its commit, and every other worker's chunk waits for it then. `held_share` is that time
over the chunk's wall time (the wait for the lock, `claim_share`, is not part of it): the
serial fraction, so 1 / held_share bounds the speed-up over any number of workers (Amdahl).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.build_detoxify import build_bert_base_detoxify
from bench.common import (
    PYTHON,
    ROOT,
    emit,
    ensure_database,
    log,
    machine,
    make_run_scorer_env,
    migrate,
    raise_on_sigterm,
    redis_clear,
    rounded,
    service_urls,
    with_path,
)
from bench.curation import MODEL_DIR, edit_items, ingest

BENCH_DB = "flywheel_bench_workers"
BENCH_REDIS_DB = 4
TARGET_RATIO = 1.6
TARGET_HELD_SHARE = 0.05
HOLD_PARTS = (
    "held_share",
    "claim_share",
    "precheck_share",
    "recheck_share",
    "commit_share",
    "rest_share",
    "raced",
)
CORES = os.cpu_count() or 1


def policy_all_filters(*, note: str) -> None:
    """Every filter on, from the model's defaults, with the thresholds of bench/curation.py:
    toxicity never fails (random weights), about half pass quality and are sampled."""
    from curation import filters
    from curation.models import CurationPolicy
    from curation.policies import POLICY_FIELDS, policy_create

    defaults = {name: CurationPolicy._meta.get_field(name).get_default() for name in POLICY_FIELDS}
    policy_create(
        changes={
            **defaults,
            "enabled_filters": list(filters.FILTER_ORDER),
            "toxicity_threshold": 1.0,
            "quality_min": 0.5,
        },
        note=note,
    )


def _reset(ids: list[int]) -> None:
    """No candidates, runs, dedup keys or rollup; `ids` pending again, the rest done."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE curation_candidate, curation_curationrun, "
            "curation_deduplisting, curation_curationmetricday RESTART IDENTITY CASCADE"
        )
        cursor.execute(
            "UPDATE curation_interaction SET curation_claimed_at = NULL, curation_state = "
            "CASE WHEN id = ANY(%s) THEN 'pending' ELSE 'done' END",
            [ids],
        )
        cursor.execute("VACUUM ANALYZE curation_interaction")


def _round(
    *, ids: list[int], chunk: int, workers: int, env: dict, redis_url: str, threads: int
) -> dict:
    import django_rq
    from django.db.models import Max, Min

    from curation import jobs
    from curation.models import CurationRun, Interaction

    _reset(ids)
    redis_clear(url=redis_url)
    queue = django_rq.get_queue("curation")
    for start in range(0, len(ids), chunk):
        queue.enqueue(jobs.curate_interactions, ids[start : start + chunk])
    threads = str(threads or max(1, CORES // workers))
    with tempfile.TemporaryDirectory() as tmp:
        timings = Path(tmp) / "chunks.jsonl"
        procs = [
            subprocess.Popen(
                [PYTHON, "-m", "bench.timed_curation_worker", str(timings)],
                cwd=ROOT,
                env={**env, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads},
                stdout=subprocess.DEVNULL,
            )
            for _ in range(workers)
        ]
        for proc in procs:
            if proc.wait(timeout=3600) != 0:
                raise RuntimeError(f"a curation worker exited with {proc.returncode}")
        chunks = [json.loads(line) for line in timings.read_text().splitlines()]
    pending = Interaction.objects.filter(pk__in=ids).exclude(curation_state="done").count()
    if pending:
        raise RuntimeError(f"{pending} interactions were not curated")
    span = CurationRun.objects.aggregate(start=Min("started_at"), end=Max("finished_at"))
    seconds = (span["end"] - span["start"]).total_seconds()
    chunk_s = sum(c["chunk_s"] for c in chunks)
    return {
        "workers": workers,
        "seconds": seconds,
        "interactions_per_s": len(ids) / seconds,
        "held_share": sum(c["held_s"] for c in chunks) / chunk_s,
        "claim_share": sum(c["claim_s"] for c in chunks) / chunk_s,
        # The wait for the lock, and the held part's pieces: the re-read, the commit.
        "recheck_share": sum(c.get("recheck_s", 0.0) for c in chunks) / chunk_s,
        # The check before the lock, which is not held.
        "precheck_share": sum(c.get("precheck_s", 0.0) for c in chunks) / chunk_s,
        "commit_share": sum(c.get("commit_s", 0.0) for c in chunks) / chunk_s,
        "raced": sum(bool(c.get("raced")) for c in chunks) / len(chunks),
        # Held otherwise: deciding again after a race, the sampling, the rollup.
        "rest_share": sum(
            c["held_s"] - c.get("recheck_s", 0.0) - c.get("commit_s", 0.0) for c in chunks
        )
        / chunk_s,
        # Cores the machine kept busy while chunks ran: with one worker, the share of the
        # machine one worker (and the PostgreSQL work it causes) already takes.
        "cores_busy": sum(c["machine_busy_s"] for c in chunks) / chunk_s / workers,
        "load_1m": os.getloadavg()[0],
    }


def _compare(
    *, name: str, ids: list[int], chunk: int, rounds: int, env: dict, redis_url, threads: int
) -> dict:
    runs: dict[int, list[dict]] = {1: [], 2: []}
    for index in range(rounds):
        for workers in (1, 2):
            log(f"{name}: round {index + 1}/{rounds}, {workers} worker(s)")
            result = _round(
                ids=ids, chunk=chunk, workers=workers, env=env, redis_url=redis_url, threads=threads
            )
            log(
                f"  {result['interactions_per_s']:.1f} interactions/s, "
                f"held share {result['held_share']:.3f}, waited {result['claim_share']:.3f}, "
                f"checked before {result['precheck_share']:.3f}, "
                f"re-read {result['recheck_share']:.3f}, commit {result['commit_share']:.3f}, "
                f"rest {result['rest_share']:.3f}, "
                f"chunks overtaken {result['raced']:.2f}"
            )
            runs[workers].append(result)

    def median(workers: int, key: str) -> float:
        return statistics.median(r[key] for r in runs[workers])

    ratios = [
        two["interactions_per_s"] / one["interactions_per_s"]
        for one, two in zip(runs[1], runs[2], strict=True)
    ]
    held = max(median(1, "held_share"), median(2, "held_share"))
    return {
        "interactions": len(ids),
        "chunk": chunk,
        "one_worker_per_s": rounded(median(1, "interactions_per_s"), 2),
        "two_workers_per_s": rounded(median(2, "interactions_per_s"), 2),
        "ratio_median": rounded(statistics.median(ratios), 3),
        "ratios": [rounded(r, 3) for r in ratios],
        "global_lock_share": rounded(held, 4),
        "held_share": rounded(held, 4),
        "claim_share_two_workers": rounded(median(2, "claim_share"), 4),
        "hold_breakdown": {
            workers: {key: rounded(median(workers, key), 4) for key in HOLD_PARTS}
            for workers in (1, 2)
        },
        "amdahl_bound": rounded(1 / held, 1) if held else None,
        "torch_threads_per_worker": threads or f"{CORES} / workers",
        # One worker's chunks kept this many cores busy: two can be at most CORES / that
        # times as fast on this machine, whatever the locks.
        "one_worker_cores_busy": rounded(median(1, "cores_busy"), 2),
        "machine_bound": rounded(CORES / median(1, "cores_busy"), 2),
        "load_1m": [rounded(r["load_1m"], 2) for w in (1, 2) for r in runs[w]],
        "targets_met": statistics.median(ratios) >= TARGET_RATIO and held <= TARGET_HELD_SHARE,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interactions", type=int, default=2000)
    parser.add_argument("--model-interactions", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip-model", action="store_true", help="only the make-run scorer")
    parser.add_argument(
        "--database",
        default=BENCH_DB,
        help="the bench's database (another name keeps a branch's migrations off the shared one)",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="math threads per worker (a worker per core; 0: the cores shared among the workers)",
    )
    args = parser.parse_args()
    raise_on_sigterm()
    began = time.perf_counter()
    base_db, base_redis = service_urls()
    db_url = with_path(base_db, args.database)
    redis_url = with_path(base_redis, str(BENCH_REDIS_DB))
    fallback = make_run_scorer_env(database_url=db_url, redis_url=redis_url)
    ensure_database(url=db_url)
    log(f"migrating {args.database}")
    migrate(env=fallback)
    os.environ.update(fallback)
    import django

    django.setup()
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE curation_interaction, curation_feedback RESTART IDENTITY CASCADE")
    log(f"ingesting {args.interactions} edited interactions")
    ids = ingest(edit_items(count=args.interactions, seed=7))
    policy_all_filters(note="bench: workers")
    result = {"bench": "curation_workers", "machine": machine()}
    result["make_run_scorer"] = _compare(
        name="make-run scorer",
        ids=ids,
        chunk=200,
        rounds=args.rounds,
        env=fallback,
        redis_url=redis_url,
        threads=args.torch_threads,
    )
    if not args.skip_model:
        checkpoint = MODEL_DIR / "bert-base-random-detoxify.ckpt"
        config_dir = MODEL_DIR / "bert-base-random"
        if not (checkpoint.is_file() and (config_dir / "config.json").is_file()):
            log(f"building the bert-base Detoxify checkpoint in {MODEL_DIR}")
            checkpoint, config_dir = build_bert_base_detoxify(MODEL_DIR)
        model_env = {
            **fallback,
            "FLYWHEEL_TOXICITY_CHECKPOINT": str(checkpoint),
            "FLYWHEEL_TOXICITY_CONFIG_DIR": str(config_dir),
            "FLYWHEEL_TOXICITY_ALLOW_FALLBACK": "false",
        }
        result["bert_base_detoxify"] = _compare(
            name="bert-base Detoxify",
            ids=ids[: args.model_interactions],
            chunk=25,
            rounds=args.rounds,
            env=model_env,
            redis_url=redis_url,
            threads=args.torch_threads,
        )
    redis_clear(url=redis_url)
    result["targets"] = {"ratio": TARGET_RATIO, "held_share": TARGET_HELD_SHARE}
    result["total_seconds"] = rounded(time.perf_counter() - began, 1)
    emit(result)


if __name__ == "__main__":
    main()
