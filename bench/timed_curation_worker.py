"""A curation RQ worker for bench/curation_workers.py: `python -m bench.timed_curation_worker
FILE`. It loads the toxicity model before taking jobs (a long-running worker has it loaded),
then works the `curation` queue in burst mode and appends one JSON line per chunk to FILE:
the chunk's wall time, the time from locking its dedup keys to its commit (the only part
another worker can wait for), the time the lock itself took (waiting included), and the CPU
the worker and the whole machine used meanwhile. The held part is broken down into the claim,
the re-read under the keys (`EarlierCandidates.unchanged`) and the commit (from the re-read's
end to the transaction's commit hook); `redone` counts chunks whose write was done again
holding their keys first (another worker committed under one of them meanwhile)."""

import json
import os
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flywheel_site.settings")
django.setup()

from django.core.management import call_command  # noqa: E402 (after django.setup)
from django.db import transaction  # noqa: E402

from curation import pipeline  # noqa: E402
from curation.dedup_earlier import EarlierCandidates  # noqa: E402
from curation.policies import toxicity_config  # noqa: E402
from curation.toxicity import get_scorer  # noqa: E402

OUT = sys.argv[1]
_chunk = pipeline.interactions_curate_chunk
_claim = pipeline.dedup_keys_claim
_unchanged = EarlierCandidates.unchanged
_state: dict[str, float] = {}


def _add(name: str, seconds: float) -> None:
    _state[name] = _state.get(name, 0.0) + seconds


def _committed() -> None:
    _add("commit_s", time.perf_counter() - _state.pop("checked_at"))


def dedup_keys_claim(*args, **kwargs):
    started = time.perf_counter()
    listed = _claim(*args, **kwargs)
    # The first claim: a chunk redone after a race on its keys counts both tries as held.
    _state.setdefault("claimed_at", started)
    _add("claims", 1)
    _add("claim_s", time.perf_counter() - started)
    return listed


def unchanged(self, *args, **kwargs):
    started = time.perf_counter()
    same = _unchanged(self, *args, **kwargs)
    _state["checked_at"] = time.perf_counter()
    _add("recheck_s", _state["checked_at"] - started)
    transaction.on_commit(_committed)
    return same


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
        "recheck_s": _state.get("recheck_s", 0.0),
        "commit_s": _state.get("commit_s", 0.0),
        "redone": _state.get("claims", 0.0) > 1,
        "candidates": counts.get("candidates", 0),
    }
    with open(OUT, "a") as out:
        out.write(json.dumps(line) + "\n")
    return counts


pipeline.dedup_keys_claim = dedup_keys_claim
EarlierCandidates.unchanged = unchanged
pipeline.interactions_curate_chunk = interactions_curate_chunk
get_scorer(toxicity_config()).score_batch(["warm up the model before the first job"] * 8)
call_command("rqworker", "curation", "--burst", "--worker-class", "rq.worker.SimpleWorker")
