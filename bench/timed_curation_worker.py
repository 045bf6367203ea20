"""A curation RQ worker for bench/curation_workers.py: `python -m bench.timed_curation_worker
FILE`. It loads the toxicity model before taking jobs (a long-running worker has it loaded),
then works the `curation` queue in burst mode and appends one JSON line per chunk to FILE:
the chunk's wall time; the time it held the dedup lock, from being granted it to the end of
its transaction or to the race that gives it back (summed: the only part another worker
can wait for); the time it waited for the lock; the re-reads
(`EarlierCandidates.unchanged`) before the lock and under it; the commit; whether another
worker overtook the chunk (it then decided again, or, in the code before, wrote again);
and the CPU the worker and the whole machine used meanwhile."""

import json
import os
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flywheel_site.settings")
django.setup()

from django.core.management import call_command  # noqa: E402 (after django.setup)
from django.db import connections, transaction  # noqa: E402

from curation import pipeline  # noqa: E402
from curation.dedup_earlier import EarlierCandidates  # noqa: E402
from curation.policies import toxicity_config  # noqa: E402
from curation.toxicity import get_scorer  # noqa: E402

OUT = sys.argv[1]
_chunk = pipeline.interactions_curate_chunk
_unchanged = EarlierCandidates.unchanged
# What takes the keys' locks: the claim (list and lock) and, where the code has it, the
# lock alone (a chunk that lists its candidates before locking).
_LOCKING = [name for name in ("dedup_keys_claim", "dedup_keys_lock") if hasattr(pipeline, name)]
_state: dict[str, float] = {}


def _add(name: str, seconds: float) -> None:
    _state[name] = _state.get(name, 0.0) + seconds


def _timed_lock(lock):
    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return lock(*args, **kwargs)
        finally:
            # Held from when the lock was granted: the wait for it is not a hold. No
            # candidates: no lock taken.
            acquired = time.perf_counter()
            if kwargs.get("candidates", args[0] if args else None):
                _state.setdefault("locked_at", acquired)
                _add("locks", 1)
                _add("claim_s", acquired - started)

    return timed


def unchanged(self, *args, **kwargs):
    started = time.perf_counter()
    held = "locked_at" in _state  # the re-check under the lock, or the one before it
    try:
        same = _unchanged(self, *args, **kwargs)
        _state["raced"] = _state.get("raced", False) or not same
        return same
    finally:
        _add("recheck_s" if held else "precheck_s", time.perf_counter() - started)


def _transaction_end(end, commit: bool):
    """`end` (the connection's commit or rollback), ending a hold if the keys are held."""

    def timed():
        started = time.perf_counter()
        try:
            return end()
        finally:
            locked_at = _state.pop("locked_at", None)
            if locked_at is not None:
                ended = time.perf_counter()
                _add("held_s", ended - locked_at)
                if commit:
                    _add("commit_s", ended - started)

    return timed


def _savepoint_rollback(rollback):
    """The pipeline's rollback of its sampling savepoint, which gives back the dedup lock
    taken after it (a race: the chunk decides again without the lock): a hold ends."""

    def timed(*args, **kwargs):
        try:
            return rollback(*args, **kwargs)
        finally:
            locked_at = _state.pop("locked_at", None)
            if locked_at is not None:
                _add("held_s", time.perf_counter() - locked_at)

    return timed


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
        "held_s": _state.get("held_s", 0.0),
        "claim_s": _state.get("claim_s", 0.0),
        "recheck_s": _state.get("recheck_s", 0.0),
        "precheck_s": _state.get("precheck_s", 0.0),
        "commit_s": _state.get("commit_s", 0.0),
        "raced": _state.get("locks", 0.0) > 1 or _state.get("raced", False),
        "candidates": counts.get("candidates", 0),
    }
    with open(OUT, "a") as out:
        out.write(json.dumps(line) + "\n")
    return counts


db = connections["default"]
db._commit = _transaction_end(db._commit, commit=True)
db._rollback = _transaction_end(db._rollback, commit=False)
transaction.savepoint_rollback = _savepoint_rollback(transaction.savepoint_rollback)
for _name in _LOCKING:
    setattr(pipeline, _name, _timed_lock(getattr(pipeline, _name)))
pipeline.interactions_curate_chunk = interactions_curate_chunk
EarlierCandidates.unchanged = unchanged
get_scorer(toxicity_config()).score_batch(["warm up the model before the first job"] * 8)
call_command("rqworker", "curation", "--burst", "--worker-class", "rq.worker.SimpleWorker")
