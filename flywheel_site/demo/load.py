"""What `manage.py load_demo` does: the demo traffic, an API token and the demo accounts,
then the rest of the loop (`flywheel_site.demo.loop`). It lives in the site because it
drives every app.

Safe to run on every `make run`: a second run creates nothing and says so. Events are
stored once by their event ids (the ingest service guarantees it), and a load that was
interrupted is completed by sending only the events still missing."""

import itertools
import math
import os
import sys
import time
from datetime import UTC, datetime, timedelta

import time_machine
from django.conf import settings
from django.core.management.base import CommandError
from django.db import IntegrityError
from tqdm import tqdm

from curation.models import ApiToken, Feedback, Interaction, Source
from curation.services import api_token_create, batch_ingest
from flywheel_site import redis as fw_redis
from flywheel_site.demo import accounts, progress
from flywheel_site.demo import traffic as demo
from flywheel_site.demo.cycles import DEFAULT_PRESET, demo_cycles_pending, demo_cycles_train
from flywheel_site.demo.jobs import JOB_ID, demo_cycles_run
from flywheel_site.demo.loop import DATASET_NAME, demo_loop_load
from training.datasets.rollups import metrics_rebuild
from training.runs import services as training_runs

CHUNK = 500
RECEIVED_AFTER = timedelta(minutes=1)
URL = "http://127.0.0.1:{port}/"
REJECTED = "{count} demo events were rejected; first errors: {errors}"
CYCLES_QUEUED = (
    "The demo's training cycles continue in the background; every page says how far they "
    "are until they are done."
)
DEMO_LOADED = "The demo is loaded (its training cycles took {seconds:.0f} s more)."
CYCLES_NOT_QUEUED = (
    "Redis is not reachable: the demo's training cycles were not queued; run `manage.py "
    "load_demo` again once it is."
)


def chunks(interactions: list[dict], feedback: list[dict], *, size: int = CHUNK):
    """Proportional slices of both lists, so each chunk carries feedback from about the
    same time as its interactions, as an app that flushes its log every few seconds
    would send them (and a late interaction arrives after its feedback)."""
    total = len(interactions) + len(feedback)
    n = max(1, math.ceil(total / size))
    while True:
        bounds = [
            (len(interactions) * k // n, len(feedback) * k // n) for k in range(n + 1)
        ]  # fmt: skip
        pieces = [
            (interactions[a:c], feedback[b:d]) for (a, b), (c, d) in itertools.pairwise(bounds)
        ]
        if all(len(i) + len(f) <= size for i, f in pieces):
            return pieces
        n += 1


def demo_load(
    *,
    interactions: int,
    seed: int,
    now: datetime | None,
    stdout,
    background: bool = False,
    preset: str = DEFAULT_PRESET,
) -> None:
    """Everything `load_demo` makes, reported on `stdout`; idempotent (see the module notes).
    With `background`, the training cycles are left to the training queue's worker; `preset`
    names their training settings (`flywheel_site.demo.cycles.PRESETS`).
    Raises CommandError on a bad count, a refused password or rejected events."""
    if interactions < 1:
        raise CommandError(demo.BAD_COUNT.format(n=interactions))
    # Whole weeks after the demo's fixed reference, so the texts and the weekly rhythm are
    # the same whatever the day; then moved on by less than a week, so the demo's weeks end
    # at the moment it is loaded (its last day is not days of zeros, its queue not stale).
    now = now or datetime.now(UTC)
    reference = demo.reference_before(now)
    shift = now - reference
    # Accounts first: a password the validators refuse stops the command before it
    # loads anything.
    try:
        users = accounts.demo_users_create(**accounts.demo_passwords(os.environ))
    except ValueError as error:
        raise CommandError(str(error)) from None
    source, _ = Source.objects.get_or_create(name=demo.DEMO_SOURCE)
    _token(source, stdout=stdout)
    _data(
        source,
        *demo.shifted(
            demo.generate(seed=seed, reference=reference, n_interactions=interactions), shift
        ),
        stdout=stdout,
    )
    _print_users(users, stdout=stdout)
    # The rest of the loop, six weeks of it: curation, scripted reviews, gold, dataset
    # versions, training, gates and promotions (flywheel_site.demo.loop).
    demo_loop_load(stdout=stdout, reference=reference, shift=shift)
    if background:
        _cycles_enqueue(stdout=stdout, preset=preset)
    else:
        demo_cycles_train(dataset_name=DATASET_NAME, stdout=stdout, preset=preset)
    # The rollups were kept by every write; a rebuild is cheap at demo size and makes
    # the dashboard exact whatever an interrupted earlier load left behind.
    rebuilt = metrics_rebuild()
    stdout.write(f"Dashboard rollups rebuilt ({sum(rebuilt.values())} rows).")


def demo_wait(*, stdout, poll_s: float = 5.0) -> None:
    """Return once no demo is loading (the banner's key is gone or has expired)."""
    started = time.monotonic()
    while progress.progress_get() is not None:
        time.sleep(poll_s)
    stdout.write(DEMO_LOADED.format(seconds=time.monotonic() - started))


def _cycles_enqueue(*, stdout, preset: str) -> None:
    cycle, of = demo_cycles_pending(dataset_name=DATASET_NAME)
    if cycle > of:
        return
    progress.progress_set(text=progress.CYCLE.format(cycle=cycle, of=of))
    queued = fw_redis.enqueue(
        training_runs.QUEUE,
        demo_cycles_run,
        DATASET_NAME,
        preset,
        job_id=JOB_ID,
        job_timeout=settings.FLYWHEEL_TRAINING_JOB_TIMEOUT_S,
    )
    if not queued:
        progress.progress_clear()
    stdout.write(CYCLES_QUEUED if queued else CYCLES_NOT_QUEUED)


def _token(source: Source, *, stdout) -> None:
    if ApiToken.objects.filter(source=source, name=demo.DEMO_TOKEN_NAME).exists():
        return
    try:
        token, raw = api_token_create(
            source_name=source.name,
            name=demo.DEMO_TOKEN_NAME,
            scopes=list(demo.DEMO_TOKEN_SCOPES),
        )
    except IntegrityError:
        return  # another load_demo created it a moment ago
    stdout.write(
        f"API token {token.name!r} for source {source.name!r} "
        f"({', '.join(token.scopes)}); shown once, store it now:\n  {raw}"
    )


def _data(source: Source, interactions: list[dict], feedback: list[dict], *, stdout) -> None:
    have_i = set(Interaction.objects.filter(source=source).values_list("event_id", flat=True))
    todo_i = [x for x in interactions if x["event_id"] not in have_i]
    # The interaction ids depend only on --interactions, but what feedback there is
    # depends on `now` as well (answers given minutes ago have none yet). So "every
    # interaction is there" is what marks a finished load: the last chunk carries
    # the last interactions, and chunks commit in order.
    if not todo_i:
        stdout.write(
            f"Demo data already loaded for source {source.name!r} "
            f"({Interaction.objects.filter(source=source).count()} interactions, "
            f"{Feedback.objects.filter(source=source).count()} feedback events); "
            "nothing new created."
        )
        return
    have_f = set(Feedback.objects.filter(source=source).values_list("event_id", flat=True))
    todo_f = [x for x in feedback if x["event_id"] not in have_f]
    created = {"interaction": 0, "feedback": 0}
    rejected: list[dict] = []
    with tqdm(
        total=len(todo_i) + len(todo_f),
        desc="demo events",
        unit="event",
        file=sys.stderr,
        disable=None,  # no bar when stderr is not a terminal
    ) as bar:
        for part_i, part_f in chunks(todo_i, todo_f):
            # Received a minute after the chunk's last event, in the simulated weeks: what is
            # reckoned from arrival (time to improvement, queue age) reads as it would have.
            with time_machine.travel(_received_at(part_i + part_f), tick=False):
                result = batch_ingest(source=source, interactions=part_i, feedback=part_f, edits=[])
            for item in result["results"]:
                if item["status"] == "created":
                    created[item["kind"]] += 1
                elif item["status"] == "rejected":
                    rejected.append(item)
            bar.update(len(part_i) + len(part_f))
    if rejected:
        errors = [e for item in rejected[:3] for e in item["errors"]]
        raise CommandError(REJECTED.format(count=len(rejected), errors=errors))
    stdout.write(
        f"Demo data: created {created['interaction']} interactions and "
        f"{created['feedback']} feedback events for source {source.name!r}."
    )


def _received_at(events: list[dict]) -> datetime:
    return max(datetime.fromisoformat(e["occurred_at"]) for e in events) + RECEIVED_AFTER


def _print_users(users: list[accounts.DemoUser], *, stdout) -> None:
    stdout.write(f"Sign in at {URL.format(port=os.environ.get('PORT') or '8000')}")
    for user in users:
        password = user.password or "(password changed since; not shown)"
        note = user.role if user.created else f"{user.role}, existing account"
        stdout.write(f"  {user.username} / {password}  ({note})")
