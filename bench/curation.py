"""Curation throughput with the real toxicity scorer, against the raw model rate.

Run: `make bench`, or `.venv/bin/python bench/curation.py` with DATABASE_URL and
REDIS_URL set (`eval "$(scripts/services.sh env)"`). Prints one JSON object on
stdout; progress goes to stderr. Figures and how to read them: bench/RESULTS.md.

What it measures, in one process, on its own `flywheel_bench_curation` database:
1. N edited interactions (an `edits` item each, through the real ingest service)
   whose chosen texts are about 40 words and whose edits land inside the edit
   band, so most candidates reach the toxicity step; a few are built to fail
   earlier (exact and near duplicates, an edit too small). About 3% of prompts
   carry PII: ingest redacts it, as in production, so the PII filter finds none.
2. `interactions_curate`, one chunk at a time, with every filter enabled and the
   toxicity scorer Detoxify loaded through `DetoxifyScorer` from a bert-base
   checkpoint with random weights (`bench/build_detoxify.py`, cached under
   `.run/bench/`): a random model costs what the real one costs. The toxicity
   threshold is 1.0 so that the random scores do not fail every candidate and
   the quality filter and sampling run as they would in production.
   The quality minimum is lowered to 0.5 so that about half pass and are sampled.
3. The raw model: after each chunk of the pipeline (`FLYWHEEL_CURATION_CHUNK`
   interactions), `score_batch` on exactly the texts that chunk scored, with the
   same batch size, in one call (the scorer sorts them all by length). The
   alternation keeps load from other processes from favouring either side.
4. The same interactions curated again, from scratch, under a policy without
   the toxicity filter: what everything else costs alone.

The pipeline rate over the raw rate is the share of the pipeline's time spent
in the model: the target is >= 0.8 (everything else < 20%).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import random
import string
import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.build_detoxify import benchmark_texts, build_bert_base_detoxify
from bench.common import (
    ROOT,
    TrafficFactory,
    app_env,
    emit,
    ensure_database,
    log,
    machine,
    migrate,
    raise_on_sigterm,
    redis_clear,
    rounded,
    service_urls,
    with_path,
)

BENCH_DB = "flywheel_bench_curation"
# Not the ingest benchmark's database 2: ingest here enqueues curation jobs
# (no worker consumes them) and they are deleted at the end.
BENCH_REDIS_DB = 3
MODEL_DIR = ROOT / ".run" / "bench" / "detoxify-bert-base"
SOURCE = "bench-curation"
TARGET_RATIO = 0.8
WORDS = 40
EDIT_FRACTION = 0.25  # words of the answer the user rewrites: char similarity about 0.8
# Shares of interactions built to fail before the toxicity step.
EXACT_DUPLICATES = 0.02
NEAR_DUPLICATES = 0.02
TOO_SMALL_EDITS = 0.02
PROMPT_PII_RATE = 0.03
BLOCKLIST_TERMS = ["chargeback fraud", "internal use only"]
BLOCKLIST_PATTERNS = [r"\bpassword\s*[:=]\s*\S+"]

NO_CHECKPOINT = "the toxicity checkpoint was not built: {path}"


# --- data ---------------------------------------------------------------------


def _word(rng: random.Random) -> str:
    # The shape build_detoxify.benchmark_texts uses: with its generated vocabulary
    # these words become about 1.3 tokens each, as English does in bert-base.
    length = rng.choice((2, 3)) if rng.random() < 0.7 else rng.randint(4, 6)
    return "".join(rng.choices(string.ascii_lowercase, k=length))


def _edited(text: str, rng: random.Random, fraction: float) -> str:
    words = text.split(" ")
    for index in rng.sample(range(len(words)), max(1, round(len(words) * fraction))):
        tail = "." if words[index].endswith(".") else ""
        words[index] = _word(rng) + tail
    return " ".join(words)


def edit_items(*, count: int, seed: int = 0) -> list[dict]:
    """`edits` ingest items: a realistic prompt (English-like, digits, some PII),
    a 40-word answer, and the user's edit of a quarter of its words."""
    rng = random.Random(seed)
    traffic = TrafficFactory(seed=seed, pii_rate=PROMPT_PII_RATE)
    answers = benchmark_texts(count=count, words=WORDS, seed=seed)
    models = [
        ("support", "support-bot-v3"),
        ("summarisation", "summariser-2026-10"),
        ("qa", "gpt-in-house-7b"),
    ]
    items: list[dict] = []
    for index, answer in enumerate(answers):
        task_type, model = models[index % len(models)]
        item = {
            "event_id": f"bench-edit-{seed}-{index}",
            "prompt": traffic.text(rng.randint(300, 500)),
            "original_llm_output": answer,
            "final_user_edit": _edited(answer, rng, EDIT_FRACTION),
            "model": model,
            "task_type": task_type,
            "occurred_at": traffic.occurred_at(),
            "user_id": f"user-{rng.randint(1, 5000)}",
            "metadata": traffic.metadata(),
        }
        roll = rng.random()
        if items and roll < EXACT_DUPLICATES:
            earlier = rng.choice(items)
            item.update(
                prompt=earlier["prompt"],
                original_llm_output=earlier["original_llm_output"],
                final_user_edit=earlier["final_user_edit"],
            )
        elif items and roll < EXACT_DUPLICATES + NEAR_DUPLICATES:
            earlier = rng.choice(items)
            item.update(
                prompt=earlier["prompt"],
                original_llm_output=earlier["original_llm_output"],
                final_user_edit=_edited(earlier["final_user_edit"], rng, 1 / WORDS),
            )
        elif roll < EXACT_DUPLICATES + NEAR_DUPLICATES + TOO_SMALL_EDITS:
            item["final_user_edit"] = answer[:-1] + "!"
        items.append(item)
    return items


# --- the database -------------------------------------------------------------


def reset_curation(*, keep_interactions: bool) -> None:
    """Forget every curation result; optionally the interactions too. Policies
    are read-only rows (a trigger refuses deletes) and stay: each run adds a version."""
    from django.db import connection

    tables = ["curation_candidate", "curation_curationrun"]
    if not keep_interactions:
        tables += ["curation_interaction", "curation_feedback"]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        if keep_interactions:
            cursor.execute(
                "UPDATE curation_interaction SET curation_state = 'pending', "
                "curation_claimed_at = NULL"
            )
        cursor.execute("VACUUM ANALYZE curation_interaction")


def ingest(items: list[dict]) -> list[int]:
    from django.conf import settings

    from curation.models import Interaction, Source
    from curation.services import batch_ingest

    source, _ = Source.objects.get_or_create(name=SOURCE)
    step = settings.FLYWHEEL_INGEST_MAX_BATCH
    for start in range(0, len(items), step):
        result = batch_ingest(
            source=source, interactions=[], feedback=[], edits=items[start : start + step]
        )
        if result["rejected"]:
            raise RuntimeError(f"ingest rejected items: {result}")
    return list(Interaction.objects.order_by("pk").values_list("pk", flat=True))


# --- measuring ----------------------------------------------------------------


class TimedScorer:
    """Wraps the cached scorer's score_batch to record the texts the pipeline
    scored and the time spent in the model, without changing what it does."""

    def __init__(self, scorer):
        self.scorer = scorer
        self.original = scorer.score_batch
        self.texts: list[str] = []
        self.seconds = 0.0
        self.calls = 0

    def __enter__(self) -> TimedScorer:
        def score_batch(texts):
            started = time.perf_counter()
            try:
                return self.original(texts)
            finally:
                self.seconds += time.perf_counter() - started
                self.texts.extend(texts)
                self.calls += 1

        self.scorer.score_batch = score_batch
        return self

    def __exit__(self, *exc) -> None:
        del self.scorer.score_batch  # back to the class's method


def _profiled(profiler: cProfile.Profile | None, call):
    if profiler is None:
        return call()
    profiler.enable()
    try:
        return call()
    finally:
        profiler.disable()


def _profile_report(profiler: cProfile.Profile | None, path: Path | None) -> None:
    if profiler is None or path is None:
        return
    profiler.dump_stats(str(path))
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(30)
    log(f"profile written to {path}; top by own time:\n{out.getvalue()}")


def _add(totals: dict, counts: dict) -> None:
    for key, value in counts.items():
        if isinstance(value, int):
            totals[key] = totals.get(key, 0) + value


def curate_paired(ids: list[int], *, scorer, chunk: int, profile: Path | None) -> dict:
    """Curate chunk by chunk (each call does what one chunk of a curation job
    does), and after each chunk score the texts it scored again with the bare
    model. Machines running other work change speed by the minute; alternating
    windows of a few seconds put the same load on both sides of the ratio."""
    from curation.pipeline import interactions_curate

    profiler = cProfile.Profile() if profile else None
    totals: dict = {}
    pipeline_s = raw_s = model_s = 0.0
    scored: list[str] = []
    pairs: list[tuple[float, float]] = []
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        gc.collect()
        with TimedScorer(scorer) as timed:
            started = time.perf_counter()
            counts = _profiled(profiler, partial(interactions_curate, interaction_ids=part))
            pipeline_s += time.perf_counter() - started
        _add(totals, counts)
        model_s += timed.seconds
        scored += timed.texts
        gc.collect()
        started = time.perf_counter()
        if timed.texts:
            scorer.score_batch(timed.texts)
        raw_s += time.perf_counter() - started
        pairs.append((timed.seconds, time.perf_counter() - started))
    _profile_report(profiler, profile)
    return {
        "totals": totals,
        "pipeline_s": pipeline_s,
        "raw_s": raw_s,
        "model_s": model_s,
        "scored": scored,
        "pairs": pairs,
    }


def curate_plain(ids: list[int], *, profile: Path | None) -> tuple[dict, float]:
    from curation.pipeline import interactions_curate

    profiler = cProfile.Profile() if profile else None
    gc.collect()
    started = time.perf_counter()
    totals = _profiled(profiler, partial(interactions_curate, interaction_ids=ids))
    seconds = time.perf_counter() - started
    _profile_report(profiler, profile)
    return totals, seconds


def model_info(scorer, texts: list[str]) -> dict:
    import torch

    tokens = [len(ids) for ids in scorer.tokenizer(texts[:200])["input_ids"]]
    return {
        "name": scorer.name,
        "version": scorer.version,
        "parameters_m": rounded(sum(p.numel() for p in scorer.model.parameters()) / 1e6, 1),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "tokens_per_text": rounded(sum(tokens) / len(tokens), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interactions", type=int, default=1200)
    parser.add_argument(
        "--profile",
        type=Path,
        help="also profile both curation runs: PATH.pipeline.prof, PATH.toxicity_off.prof",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    raise_on_sigterm()
    began = time.perf_counter()

    base_db, base_redis = service_urls()
    db_url = with_path(base_db, BENCH_DB)
    redis_url = with_path(base_redis, str(BENCH_REDIS_DB))
    checkpoint = MODEL_DIR / "bert-base-random-detoxify.ckpt"
    config_dir = MODEL_DIR / "bert-base-random"
    if not (checkpoint.is_file() and (config_dir / "config.json").is_file()):
        log(f"building the bert-base Detoxify checkpoint in {MODEL_DIR}")
        checkpoint, config_dir = build_bert_base_detoxify(MODEL_DIR)
    env = app_env(
        database_url=db_url,
        redis_url=redis_url,
        FLYWHEEL_TOXICITY_CHECKPOINT=str(checkpoint),
        FLYWHEEL_TOXICITY_CONFIG_DIR=str(config_dir),
        FLYWHEEL_TOXICITY_ALLOW_FALLBACK="false",
    )
    ensure_database(url=db_url)
    log(f"migrating {BENCH_DB}")
    migrate(env=env)
    os.environ.update(env)

    import django

    django.setup()
    from django.conf import settings
    from django.db.models import Count

    from curation import filters
    from curation.models import Candidate, CurationPolicy
    from curation.policies import POLICY_FIELDS, policy_create, toxicity_config
    from curation.toxicity import get_scorer

    reset_curation(keep_interactions=False)
    log(f"ingesting {args.interactions} edited interactions")
    ids = ingest(edit_items(count=args.interactions, seed=args.seed))
    redis_clear(url=redis_url)

    config = toxicity_config()
    log(f"loading the toxicity model ({checkpoint.name})")
    scorer = get_scorer(config)
    warm = benchmark_texts(count=2 * config.batch_size, words=WORDS, seed=args.seed + 1)
    scorer.score_batch(warm)  # first calls allocate and pick kernels

    all_filters = list(filters.FILTER_ORDER)
    # From the model's defaults, not the latest version: earlier runs (or a
    # person) may have left another policy on top.
    common = {
        **{name: CurationPolicy._meta.get_field(name).get_default() for name in POLICY_FIELDS},
        "toxicity_threshold": 1.0,
        "quality_min": 0.5,
        "blocklist_terms": BLOCKLIST_TERMS,
        "blocklist_patterns": BLOCKLIST_PATTERNS,
    }
    policy_create(changes={**common, "enabled_filters": all_filters}, note="bench: all filters")
    log(f"curating {len(ids)} interactions with every filter, raw model after each chunk")
    load_before = os.getloadavg()[0]
    paired = curate_paired(
        ids,
        scorer=scorer,
        chunk=settings.FLYWHEEL_CURATION_CHUNK,
        profile=args.profile and args.profile.with_suffix(".pipeline.prof"),
    )
    totals, pipeline_s, raw_s = paired["totals"], paired["pipeline_s"], paired["raw_s"]
    scored = paired["scored"]
    failed_by_filter = dict(
        Candidate.objects.filter(status=Candidate.Status.FAILED)
        .values_list("failed_filter")
        .annotate(n=Count("pk"))
        .order_by("failed_filter")
    )

    log("curating the same interactions again, from scratch, without the toxicity filter")
    reset_curation(keep_interactions=True)
    policy_create(
        changes={**common, "enabled_filters": [n for n in all_filters if n != filters.TOXICITY]},
        note="bench: toxicity off",
    )
    off_totals, off_s = curate_plain(
        ids, profile=args.profile and args.profile.with_suffix(".toxicity_off.prof")
    )
    load_after = os.getloadavg()[0]
    redis_clear(url=redis_url)

    candidates = totals.get("candidates", 0)
    raw_rate = len(scored) / raw_s if raw_s else 0.0
    scored_rate = len(scored) / pipeline_s
    ratio = scored_rate / raw_rate if raw_rate else 0.0
    result = {
        "bench": "curation",
        "machine": {**machine(), "load_1m": [rounded(load_before, 2), rounded(load_after, 2)]},
        "model": model_info(scorer, scored),
        "settings": {
            "chunk": settings.FLYWHEEL_CURATION_CHUNK,
            "batch_size": config.batch_size,
            "interactions": len(ids),
        },
        "pipeline": {
            "candidates": candidates,
            "toxicity_scored": len(scored),
            "seconds": rounded(pipeline_s, 2),
            "candidates_per_s": rounded(candidates / pipeline_s, 2),
            "scored_texts_per_s": rounded(scored_rate, 2),
            "model_seconds": rounded(paired["model_s"], 2),
            "other_seconds": rounded(pipeline_s - paired["model_s"], 2),
            "passed": totals.get("passed", 0),
            "failed": totals.get("failed", 0),
            "held": totals.get("held", 0),
            "sampled": totals.get("sampled", 0),
            "failed_by_filter": failed_by_filter,
        },
        "raw_model": {
            "texts": len(scored),
            "seconds": rounded(raw_s, 2),
            "texts_per_s": rounded(raw_rate, 2),
            # Per chunk: seconds in the model inside the pipeline, then the same
            # texts scored bare. They differ only by noise: read the spread.
            "chunks_model_vs_raw_s": [[rounded(a, 1), rounded(b, 1)] for a, b in paired["pairs"]],
        },
        "toxicity_off": {
            "candidates": off_totals.get("candidates", 0),
            "seconds": rounded(off_s, 2),
            "candidates_per_s": rounded(off_totals.get("candidates", 0) / off_s, 2),
        },
        # Scored texts/s in the pipeline over raw texts/s on the same texts: the
        # share of the pipeline's time the model accounts for.
        "ratio": rounded(ratio, 3),
        "ratio_candidates": rounded((candidates / pipeline_s) / raw_rate if raw_rate else 0.0, 3),
        "model_share_in_pipeline": rounded(paired["model_s"] / pipeline_s, 3),
        # The ratio if the model had run at the same speed in both windows: the
        # raw model's time over itself plus the pipeline's time outside the
        # model. On a shared machine the direct ratio moves with other load.
        "ratio_from_parts": rounded(raw_s / (raw_s + pipeline_s - paired["model_s"]), 3),
        "target_ratio": TARGET_RATIO,
        "targets_met": ratio >= TARGET_RATIO,
        "total_seconds": rounded(time.perf_counter() - began, 1),
    }
    emit(result)


if __name__ == "__main__":
    main()
