"""Dataset export: pairs/s of streaming a frozen version of 1,000,000 gold pairs to DPO JSONL,
against PostgreSQL's own COPY of the same columns, and the exporter's peak memory at 10,000
and at 1,000,000 pairs.

Run: `make bench` (or `scripts/bench.sh export`), or `.venv/bin/python bench/export.py` with
DATABASE_URL set (`eval "$(scripts/services.sh env)"`). Prints one JSON object on stdout;
progress on stderr. Figures: bench/RESULTS.md ("Export").

How:
1. Its own database, `flywheel_bench_export` (created and migrated; never the dev data).
   The gold chain (source, interactions, candidates, review items, outcomes, gold pairs) is
   built server-side with INSERT ... SELECT over generate_series, with realistic text sliced
   from a pool of generated English (about 2 KB per pair: a system and a user message, a
   chosen and a rejected answer). Triggers are off while it loads (session_replication_role
   = replica): the bench database is rebuilt from nothing each run and only the exporter
   is measured. NOT NULL columns this script does not know get a neutral value, so the
   build survives new columns in other apps.
2. Two datasets, one frozen version each: 10,000 pairs and all 1,000,000 (10% eval), format
   dpo_conversational. Sealing a version computes its manifest (one streaming pass that
   hashes every file), timed and reported as `seal_s`.
3. Measured in rounds on the 1M version: COPY (SELECT the same columns, same join and
   order) TO STDOUT read by psycopg and discarded; the export in a child process; COPY
   again. The export runs `dataset_version_write` (stream, serialise, hash, write, check
   against the manifest) in a fresh Python process, and its peak RSS is that child's
   ru_maxrss from wait4. The same child without the export gives the baseline (Django
   loaded, nothing streamed).
   The export measured against the targets is the JSON Lines (`--format jsonl`, as before
   Parquet existed); then the same version is exported in every format (TRL JSONL, Parquet,
   OpenAI SFT and preference, the cards), timed and reported as `export_all_formats`.
Targets (issue 5): export >= 0.3 x COPY rows/s; RSS(1M) / RSS(10k) <= 1.5.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    PYTHON,
    ROOT,
    TrafficFactory,
    app_env,
    bench_database_url,
    bench_redis_url,
    emit,
    ensure_database,
    log,
    machine,
    migrate,
    raise_on_sigterm,
    rounded,
    service_urls,
)

BENCH_DB = "flywheel_bench_export"
FORMAT = "dpo_conversational"
EVAL_EVERY = 10
TARGET_VS_COPY = 0.3
TARGET_RSS_RATIO = 1.5
TEXT_CHUNKS = 4096

# Neutral values for NOT NULL columns this script does not fill itself.
_NEUTRAL = {
    "character varying": "''",
    "text": "''",
    "jsonb": "'{}'::jsonb",
    "ARRAY": "'{}'",
    "timestamp with time zone": "now()",
    "boolean": "false",
    "double precision": "0",
    "smallint": "0",
    "integer": "0",
    "bigint": "0",
}
_TABLES = (
    "training_membership",
    "training_datasetversion",
    "training_dataset",
    "training_goldpair",
    "review_reviewoutcome",
    "review_reviewitem",
    "curation_candidate",
    "curation_interaction",
    "curation_source",
)
COPY_SQL = """
COPY (
    SELECT g.prompt, g.chosen, g.rejected
    FROM training_membership m JOIN training_goldpair g ON g.id = m.pair_id
    WHERE m.version_id = {version} AND m.split <> 'excluded'
    ORDER BY m.split DESC, m.pair_id
) TO STDOUT
"""


def _not_null_columns(cursor, table: str) -> dict[str, str]:
    cursor.execute(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_name = %s AND is_nullable = 'NO' AND column_default IS NULL",
        [table],
    )
    return dict(cursor.fetchall())


def _insert_select(
    cursor, table: str, n: int, values: dict[str, str], *, joins: str = "", params=None
) -> None:
    """INSERT INTO table SELECT ... FROM generate_series(1, n) AS s(i) [joins]: `values` maps
    columns to SQL expressions of i; other NOT NULL columns get a neutral value."""
    columns = dict(values)
    for column, data_type in _not_null_columns(cursor, table).items():
        if column not in columns:
            columns[column] = _NEUTRAL.get(data_type, "DEFAULT")
    names = ", ".join(f'"{c}"' for c in columns)
    exprs = ", ".join(columns.values())
    sql = f"INSERT INTO {table} ({names}) SELECT {exprs} FROM generate_series(1, {n}) AS s(i)"
    cursor.execute(f"{sql} {joins}", params)


def _text_table(cursor, factory: TrafficFactory) -> None:
    """TEXT_CHUNKS rows of realistic text (a user message, a chosen and a rejected answer)
    that gold pairs pick from by a hash of their number: slicing one long string per row
    would make PostgreSQL count UTF-8 characters from its start every time."""
    cursor.execute(
        "CREATE TEMP TABLE bench_text (id int PRIMARY KEY, user_text text, chosen text,"
        " rejected text) ON COMMIT DROP"
    )
    rows = []
    for n in range(TEXT_CHUNKS):
        accent = " Grüße — 東京 ✓." if n % 50 == 0 else ""
        rows.append((n, factory.text(450), factory.text(800) + accent, factory.text(700)))
    with cursor.cursor.copy("COPY bench_text FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def build(*, pairs: int) -> dict[str, float]:
    """The gold chain for `pairs` pairs, built in the database. Returns timings."""
    from django.db import connection, transaction

    factory = TrafficFactory(seed=5, pii_rate=0.0)
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(f"TRUNCATE {', '.join(_TABLES)} RESTART IDENTITY CASCADE")
        _text_table(cursor, factory)
        cursor.execute("INSERT INTO curation_source (name, created_at) VALUES ('bench', now())")
        cursor.execute("SELECT id FROM curation_source WHERE name = 'bench'")
        source_id = cursor.fetchone()[0]
        when = "timestamptz '2026-10-01' + i * interval '1 second'"
        log(f"building {pairs:,} interactions")
        _insert_select(
            cursor,
            "curation_interaction",
            pairs,
            {
                "id": "i",
                "source_id": str(source_id),
                "event_id": "'bench-' || i",
                "occurred_at": when,
                "received_at": when,
                "messages": "'[]'::jsonb",
                "response": "''",
                "curation_state": "'done'",
            },
        )
        log("building candidates, review items and outcomes")
        _insert_select(
            cursor,
            "curation_candidate",
            pairs,
            {
                "id": "i",
                "interaction_id": "i",
                "kind": "'preference'",
                "prompt": "'[]'::jsonb",
                "chosen": "'c'",
                "rejected": "'r'",
                "status": "'passed'",
                "exact_key": "i::text",
            },
        )
        _insert_select(
            cursor,
            "review_reviewitem",
            pairs,
            {
                "id": "i",
                "candidate_id": "i",
                "stratum": "'bench'",
                "inclusion_probability": "1",
                "reviews_required": "1",
                "status": "'done'",
            },
        )
        _insert_select(
            cursor,
            "review_reviewoutcome",
            pairs,
            {"id": "i", "item_id": "i", "result": "'approved'", "chosen": "'c'"},
        )
        log(f"building {pairs:,} gold pairs")
        system = "You are a helpful support assistant for Acme Cloud. Answer briefly."
        _insert_select(
            cursor,
            "training_goldpair",
            pairs,
            {
                "id": "i",
                "outcome_id": "i",
                "candidate_id": "i",
                "interaction_id": "i",
                "source_id": str(source_id),
                "model": "'support-bot-v3'",
                "task_type": "(ARRAY['support','code','qa','summarisation'])[i %% 4 + 1]",
                "kind": "'preference'",
                "prompt": "jsonb_build_array("
                "jsonb_build_object('role', 'system', 'content', %(system)s::text), "
                "jsonb_build_object('role', 'user', 'content', u.user_text))",
                "chosen": "c.chosen",
                "rejected": "r.rejected",
                "content_sha256": "encode(sha256(('c' || i)::bytea), 'hex')",
                "lineage_key": "encode(sha256(('c' || i)::bytea), 'hex')",
                "reviewer_ids": "'{}'",
                "reviews": "'[]'::jsonb",
                "occurred_at": when,
                "ingested_at": when,
                "approved_at": when,
                "created_at": "now()",
            },
            # %% is a literal % once psycopg has bound the parameters.
            joins=f"JOIN bench_text u ON u.id = (i::bigint * 7919) %% {TEXT_CHUNKS}"
            f" JOIN bench_text c ON c.id = (i::bigint * 104729) %% {TEXT_CHUNKS}"
            f" JOIN bench_text r ON r.id = (i::bigint * 1299709) %% {TEXT_CHUNKS}",
            params={"system": system},
        )
        for table in ("curation_interaction", "curation_candidate", "review_reviewitem"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {pairs})")
        for table in ("review_reviewoutcome", "training_goldpair"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {pairs})")
    built = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE training_goldpair")
    return {"build_s": rounded(built, 1)}


def freeze(*, name: str, pairs: int) -> tuple[int, float]:
    """A frozen version holding pairs 1..`pairs` (every EVAL_EVERY-th in eval), sealed with
    its real manifest. Returns (version id, seconds spent sealing)."""
    from django.db import connection, transaction
    from django.utils import timezone

    from training.datasets import canonical as gold
    from training.datasets import export, services
    from training.models import DatasetVersion

    dataset = services.dataset_create(name=name, formats=[FORMAT], lag_days=0)
    with transaction.atomic():
        version = DatasetVersion.objects.create(
            dataset=dataset,
            number=1,
            kind=dataset.kind,
            formats=dataset.formats,
            lag_days=0,
            eval_fraction=1 / EVAL_EVERY,
            near_dup_threshold=dataset.near_dup_threshold,
            cutoff=timezone.now(),
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO training_membership (version_id, pair_id, split, reason)"
                " SELECT %s, i, CASE WHEN i %% %s = 0 THEN 'eval' ELSE 'train' END, ''"
                " FROM generate_series(1, %s) AS s(i)",
                [version.pk, EVAL_EVERY, pairs],
            )
        version.frozen_at = timezone.now()
        started = time.perf_counter()
        version.manifest = export.manifest_build(version=version)
        sealed = time.perf_counter() - started
        version.manifest_sha256 = gold.sha256_hex(export.manifest_bytes(version.manifest))
        version.status = DatasetVersion.Status.FROZEN
        version.save()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE training_membership")
    return version.pk, sealed


def copy_rate(*, version_id: int) -> dict[str, float]:
    from django.db import connection

    rows = size = 0
    started = time.perf_counter()
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg's own cursor: COPY is not in the DB-API
        with raw.copy(COPY_SQL.format(version=int(version_id))) as copy:
            for block in copy:
                size += len(block)
                rows += bytes(block).count(b"\n")
    seconds = time.perf_counter() - started
    return {
        "rows": rows,
        "bytes": size,
        "seconds": rounded(seconds, 2),
        "rows_per_s": rows / seconds,
    }


def child_run(*, args: list[str], env: dict[str, str]) -> tuple[dict, int]:
    """Run this script in child mode; return its JSON line and its peak RSS in KiB."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            [PYTHON, str(Path(__file__).resolve()), *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=err,
        )
        # wait4, not wait(): it returns this child's own rusage (ru_maxrss in KiB).
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise RuntimeError(f"child {args} failed:\n{err.read().decode()[-4000:]}")
        return json.loads(out.read().decode().strip().splitlines()[-1]), usage.ru_maxrss


def child_main(*, name: str, directory: str | None, file_format: str = "all") -> None:
    import django

    django.setup()
    from training.datasets import export
    from training.models import DatasetVersion

    version = DatasetVersion.objects.select_related("dataset").get(dataset__name=name, number=1)
    if directory is None:  # the baseline: everything but the export
        print(json.dumps({"seconds": 0, "rows": 0}))
        return
    started = time.perf_counter()
    files = export.dataset_version_write(
        version=version, directory=Path(directory), file_format=file_format
    )
    seconds = time.perf_counter() - started
    # Pairs, not lines: one pair is a line in each JSONL file and a row in each Parquet file.
    rows = version.manifest["counts"]["train"] + version.manifest["counts"]["eval"]
    size = sum(stats["bytes"] for stats in files.values())
    print(json.dumps({"seconds": seconds, "rows": rows, "bytes": size, "files": len(files)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--child", nargs=2, metavar=("NAME", "DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--child-baseline", metavar="NAME", help=argparse.SUPPRESS)
    parser.add_argument("--child-format", default="jsonl", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(name=args.child[0], directory=args.child[1], file_format=args.child_format)
        return
    if args.child_baseline:
        child_main(name=args.child_baseline, directory=None)
        return
    raise_on_sigterm()

    base_db, base_redis = service_urls()
    url = bench_database_url(base_url=base_db, name=BENCH_DB)
    ensure_database(url=url)
    (ROOT / ".run").mkdir(exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="flywheel-bench-export-", dir=ROOT / ".run"))
    env = app_env(
        database_url=url,
        redis_url=bench_redis_url(base_url=base_redis),
        FLYWHEEL_EXPORT_DIR=str(scratch / "exports"),
    )
    log(f"migrating {BENCH_DB}")
    migrate(env=env)
    os.environ.update(env)
    import django

    django.setup()
    try:
        result: dict = {"benchmark": "export", "machine": machine(), "pairs": args.pairs}
        result.update(build(pairs=args.pairs))
        _, small_seal = freeze(name="bench-small", pairs=args.small)
        big_id, big_seal = freeze(name="bench-big", pairs=args.pairs)
        result["seal_s"] = {"small": rounded(small_seal, 2), "big": rounded(big_seal, 1)}

        log("COPY (round 1)")
        copy_first = copy_rate(version_id=big_id)
        log(f"export of {args.small:,} pairs in a child process")
        small, small_rss = child_run(args=["--child", "bench-small", str(scratch / "s")], env=env)
        log(f"export of {args.pairs:,} pairs in a child process")
        big, big_rss = child_run(args=["--child", "bench-big", str(scratch / "b")], env=env)
        log(f"export of {args.pairs:,} pairs in every file format (Parquet, OpenAI, cards)")
        every, every_rss = child_run(
            args=["--child", "bench-big", str(scratch / "all"), "--child-format", "all"], env=env
        )
        log("COPY (round 2)")
        copy_second = copy_rate(version_id=big_id)
        _, baseline_rss = child_run(args=["--child-baseline", "bench-big"], env=env)

        copy_rows_per_s = (copy_first["rows_per_s"] + copy_second["rows_per_s"]) / 2
        export_rows_per_s = big["rows"] / big["seconds"]
        result.update(
            {
                "format": FORMAT,
                "export": {
                    "rows": big["rows"],
                    "bytes": big["bytes"],
                    "seconds": rounded(big["seconds"], 2),
                    "pairs_per_s": round(export_rows_per_s),
                    "mb_per_s": rounded(big["bytes"] / big["seconds"] / 1e6, 1),
                },
                "export_all_formats": {
                    "files": every["files"],
                    "bytes": every["bytes"],
                    "seconds": rounded(every["seconds"], 2),
                    "pairs_per_s": round(every["rows"] / every["seconds"]),
                    "peak_rss_kib": every_rss,
                },
                "copy": {
                    "rows": copy_first["rows"],
                    "bytes": copy_first["bytes"],
                    "rounds_s": [copy_first["seconds"], copy_second["seconds"]],
                    "rows_per_s": round(copy_rows_per_s),
                },
                "export_vs_copy": rounded(export_rows_per_s / copy_rows_per_s, 3),
                "rss_kib": {
                    "baseline": baseline_rss,
                    "small": small_rss,
                    "big": big_rss,
                    "small_pairs": small["rows"],
                    "big_pairs": big["rows"],
                },
                "rss_ratio": rounded(big_rss / small_rss, 3),
                "targets": {
                    "export_vs_copy_min": TARGET_VS_COPY,
                    "rss_ratio_max": TARGET_RSS_RATIO,
                },
            }
        )
        result["passed"] = (
            result["export_vs_copy"] >= TARGET_VS_COPY and result["rss_ratio"] <= TARGET_RSS_RATIO
        )
        emit(result)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
