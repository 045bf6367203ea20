"""A curation RQ worker for bench/curation_workers.py: `python -m bench.timed_curation_worker
FILE`. It loads the toxicity model before taking jobs (a long-running worker has it loaded),
then works the `curation` queue in burst mode and appends one JSON line per chunk to FILE:
the chunk's wall time, the time from locking its dedup keys to its commit (the only part
another worker can wait for), the time the lock itself took (waiting included), and the CPU
the worker and the whole machine used meanwhile."""

import json
import os
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flywheel_site.settings")
django.setup()

from django.core.management import call_command  # noqa: E402 (after django.setup)

from curation import pipeline  # noqa: E402
from curation.policies import toxicity_config  # noqa: E402
from curation.toxicity import get_scorer  # noqa: E402

OUT = sys.argv[1]
_chunk = pipeline.interactions_curate_chunk
_claim = pipeline.dedup_keys_claim
_state: dict[str, float] = {}


def dedup_keys_claim(candidates):
    started = time.perf_counter()
    listed = _claim(candidates)
    # The first claim: a chunk redone after a race on its keys counts both tries as held.
    _state.setdefault("claimed_at", started)
    _state["claim_s"] = _state.get("claim_s", 0.0) + time.perf_counter() - started
    return listed


def _machine_busy_s() -> float:
    # Busy CPU seconds of the whole machine since boot (/proc/stat: all but idle and iowait).
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:9]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def interactions_curate_chunk(**kwargs):
    _state.clear()
    busy, cpu = _machine_busy_s(), time.process_time()
    started = time.perf_counter()
    counts = _chunk(**kwargs)
    ended = time.perf_counter()
    line = {
        "chunk_s": ended - started,
        # This worker's CPU, and the machine's (PostgreSQL's share included), in the chunk.
        "cpu_s": time.process_time() - cpu,
        "machine_busy_s": _machine_busy_s() - busy,
        "held_s": ended - _state.get("claimed_at", ended),
        "claim_s": _state.get("claim_s", 0.0),
        "candidates": counts.get("candidates", 0),
    }
    with open(OUT, "a") as out:
        out.write(json.dumps(line) + "\n")
    return counts


pipeline.dedup_keys_claim = dedup_keys_claim
pipeline.interactions_curate_chunk = interactions_curate_chunk
get_scorer(toxicity_config()).score_batch(["warm up the model before the first job"] * 8)
call_command("rqworker", "curation", "--burst", "--worker-class", "rq.worker.SimpleWorker")
