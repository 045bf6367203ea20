"""The rest of the loop for `manage.py load_demo`: six weeks of the flywheel turning, so the
dashboard has trends on the first `make run`.

Day by day over the demo's six weeks (relative to its reference, moved to end when it is
loaded): the
traffic of the morning is curated, scripted reviewers work through the queue on most days
(two reviews per item in the weeks the policy asks for it, so agreement is measured and a
curator adjudicates the disagreements), and three times a dataset version is frozen. The
weeks sample every preference candidate, to keep the scripted reviewers busy (`WEEKS_POLICY`);
when they end, the policy in force samples as the product advises (`FINAL_POLICY`). Training each
version and gating it is `flywheel_site.demo.cycles`, the slow part, which `make run` leaves
to a worker.

**Simulated time.** Each step runs with the process clock set to its simulated moment
(time-machine's `travel`), so every service stamps its rows itself (reviews, outcomes,
gold, versions, runs, models, promotions, curation runs) exactly as it would have on that
day; nothing is backdated afterwards and no append-only trigger is bypassed, but for the
migration's policy v1 on a database where nothing was curated yet
(`accounts.demo_policy_first_stamp`: it gets the weeks' first moment). The
interactions' `received_at` is simulated too (`flywheel_site.demo.load` ingests each chunk a
minute after its last event); only the stamps the database makes itself (pghistory's event
time) stay real.

Idempotent: once the demo dataset has a frozen version, a second call simulates nothing
(it keeps the base model it built).
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from curation import pipeline, runs
from curation.models import CandidateKind, CurationRun, Interaction
from flywheel_site.access import ANNOTATOR
from flywheel_site.demo import accounts, progress, traffic
from flywheel_site.demo.tinylm import build_tiny_lm
from review import services as review_services
from review.models import REJECT_REASONS, Decision, ReviewItem
from training.datasets import selectors, services
from training.models import Dataset, DatasetVersion, GoldPair, PairKind

DATASET_NAME = "acme-support"
DATASET_DESCRIPTION = (
    "Demo: every approved preference pair from the Acme Cloud demo traffic, no lag. Half of "
    "it is held out for evaluation, so that the gate judges each of the demo's cycles on at "
    "least FLYWHEEL_GATE_MIN_EVAL_PAIRS pairs; a dataset with thousands of pairs needs far "
    "less."
)
# The automatic trigger stays quiet after the demo (the demo freezes its versions itself):
# fewer new pairs than this arrive after its last version.
DATASET_THRESHOLD = 100
DATASET_EVAL_FRACTION = 0.5
WINDOW_DAYS = traffic.WINDOW_DAYS
# Days (0 = the Monday six weeks before the reference) ending with a frozen version, a
# training run and its gate: Friday of week 3, Friday of week 5, Sunday of week 6.
CYCLE_DAYS = (18, 32, 41)

# Scripted accounts: nobody signs in as them. Who works which weekday (0 = Monday), and how
# many items each takes on a working day.
REVIEWERS = ("demo-reviewer-1", "demo-reviewer-2")
WORKDAYS = {REVIEWERS[0]: (0, 1, 2, 3, 4), REVIEWERS[1]: (0, 1, 2, 3, 5)}
DAYS_OFF = {REVIEWERS[0]: (9, 24), REVIEWERS[1]: (16, 17, 38)}
DAILY_ITEMS = 14
# The curator adjudicates disagreements on Tuesdays and Fridays.
ADJUDICATION_WEEKDAYS = (1, 4)
# Weeks (0-based) in which the policy asks two reviews per item.
DOUBLE_REVIEW_WEEKS = (0, 1, 4)
# How often the second reviewer decides otherwise, by week: the reviewers calibrate.
DISAGREE_PER_MILLE = {0: 140, 1: 110, 4: 60}
# One in this many items is rejected by the reviewers.
REJECT_EVERY = 6
REJECT_REASON = REJECT_REASONS[0]
RUBRIC = {"accuracy": 4, "helpfulness": 4, "safety": 5}
REVIEW_MINUTES = 4
POLICY_NOTE = "The demo's policy (load_demo): {reviews} review(s) per item."
# The simulated weeks queue every preference candidate, to keep the scripted reviewers busy,
# and nothing they could not review (they write no answers): left queued, it would age into
# a backed-up queue by the time the demo ends.
WEEKS_POLICY = {"sample_rate": 1.0, "needs_answer_rate": 0.0, "sft_rate": 0.0}
# The policy in force when the demo ends: the product's 5-10% sample of what passes
# curation (and of what needs an answer), one review per item.
FINAL_POLICY = {
    "sample_rate": 0.075,
    "needs_answer_rate": 0.075,
    "sft_rate": 0.01,
    "reviews_required": 1,
}
FINAL_POLICY_NOTE = (
    "The demo's weeks are over: from now on 7.5% of candidates are sampled for review, as the "
    "product advises (load_demo)."
)
POLICY_IN_FORCE = (
    "Policy in force: v{version}, sampling {sample_rate:.1%} of passed candidates and "
    "{needs_answer_rate:.1%} of those needing an answer, {reviews_required} review per item."
)

CURATED = (
    "Curated {n} pending demo interactions over {days} simulated days: {candidates} candidates, "
    "{sampled} queued for review."
)
REVIEWED = (
    "Scripted reviews on {days} days: {reviews} reviews by {reviewers}; {adjudicated} "
    "disagreements adjudicated by {curator}."
)
ALREADY_SIMULATED = "The demo's six weeks are already simulated ({n} dataset versions); none added."
GOLD = "Gold pairs: {total} in all."
DATASET = "Dataset {name!r} (lag 0 days, eval {eval:.0%}, trains after {threshold} new pairs)."
FROZEN = "Froze {version} on {day}: {train} train and {eval} eval pairs."
SHORT = (
    "{version}: not trained, {n} eval pairs are fewer than the gate's minimum {needed} "
    "(FLYWHEEL_GATE_MIN_EVAL_PAIRS; load more --interactions)."
)
NOTHING_TO_FREEZE = "No approved preference pairs yet: nothing to freeze."
NOTHING_NEW = "Nothing new since {version}: not frozen again."
BASE_BUILT = "Built a tiny base model (2-layer Llama, 512-token BPE) in {path}."
BASE_EXISTS = "Base model for training: {path}."
BASE_HINT = (
    "FLYWHEEL_BASE_MODEL={path} (the default); start a run at /training/runs/ "
    "and watch its progress."
)


@dataclass
class Tally:
    reviews: int = 0
    days: set[int] = field(default_factory=set)
    adjudicated: int = 0


@contextlib.contextmanager
def _at(when: datetime, *, tick: bool = False):
    """Run the block with the process clock at `when` (see the module docstring); with
    `tick`, the clock runs on from there (a training run takes its real time)."""
    import time_machine

    with time_machine.travel(when, tick=tick):
        yield


def _hash(*parts) -> int:
    # A hash of the event id rather than random(): the same decisions on every machine and
    # whatever ids the database hands out.
    digest = hashlib.sha256("demo-review-".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big")


def _scripted(names, group_name: str) -> list:
    users = get_user_model()
    group, _ = Group.objects.get_or_create(name=group_name)
    out = []
    for name in names:
        user, created = users.objects.get_or_create(username=name)
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
            user.groups.add(group)
        out.append(user)
    return out


def _rejects(event_id: str) -> bool:
    return _hash(event_id) % REJECT_EVERY == 0


def _disagrees(event_id: str, week: int) -> bool:
    return _hash(event_id, "second") % 1000 < DISAGREE_PER_MILLE.get(week, 0)


class Simulation:
    def __init__(self, *, reference: datetime, shift: timedelta, stdout):
        # The days and hours of the week the demo was written for, then moved on by `shift`
        # (less than a week), so the weeks end at the moment the demo is loaded.
        self.start = shift + datetime.combine(
            (reference - timedelta(days=WINDOW_DAYS)).date(), time(), tzinfo=reference.tzinfo
        )
        self.reference = reference + shift
        self.stdout = stdout
        self.tally = Tally()
        self.curated = {"n": 0, "candidates": 0, "sampled": 0, "days": 0}
        self.admin = get_user_model().objects.filter(is_superuser=True).order_by("pk").first()
        curator = get_user_model().objects.filter(username=accounts.CURATOR_USERNAME).first()
        self.curator = curator or self.admin
        self.reviewers = _scripted(REVIEWERS, ANNOTATOR)
        self.reviews_required = None

    def moment(self, day: int, hour: float) -> datetime:
        return self.start + timedelta(days=day, hours=hour)

    # --- curation -------------------------------------------------------------------------

    def policy(self, day: int) -> None:
        reviews = 2 if day // 7 in DOUBLE_REVIEW_WEEKS else 1
        if reviews != self.reviews_required:
            accounts.demo_policy_apply(
                changes={"reviews_required": reviews, **WEEKS_POLICY},
                note=POLICY_NOTE.format(reviews=reviews),
            )
            self.reviews_required = reviews

    def curate(self, until: datetime) -> None:
        ids = list(
            Interaction.objects.filter(
                curation_state=Interaction.CurationState.PENDING, occurred_at__lt=until
            )
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if not ids:
            return
        run = runs.run_start(trigger=CurationRun.Trigger.COMMAND, total=len(ids))
        with runs.run_tracked(run):
            totals = pipeline.interactions_curate(interaction_ids=ids, run=run)
        self.curated["n"] += len(ids)
        self.curated["days"] += 1
        for key in ("candidates", "sampled"):
            self.curated[key] += totals.get(key, 0)

    # --- review ---------------------------------------------------------------------------

    def working(self, day: int) -> list:
        weekday = day % 7
        return [
            user
            for user in self.reviewers
            if weekday in WORKDAYS[user.username] and day not in DAYS_OFF[user.username]
        ]

    def review_day(self, day: int) -> None:
        people = self.working(day)
        if not people:
            return
        clock = self.moment(day, 9)
        taken = dict.fromkeys(people, 0)
        # Turn about, so the second reviewer of a two-review item follows the first.
        while any(n < DAILY_ITEMS for n in taken.values()):
            progressed = False
            for user in people:
                if taken[user] >= DAILY_ITEMS:
                    continue
                clock += timedelta(minutes=REVIEW_MINUTES)
                if self.review_one(user=user, clock=clock, week=day // 7):
                    taken[user] += 1
                    progressed = True
                    self.tally.days.add(day)
                else:
                    taken[user] = DAILY_ITEMS  # nothing left for them today
            if not progressed:
                break

    def review_one(self, *, user, clock: datetime, week: int) -> bool:
        with _at(clock):
            item = review_services.item_claim_next(user=user)
            while item is not None and item.candidate.kind != CandidateKind.PREFERENCE:
                # No user answer to approve: left for people to write one.
                review_services.item_skip(item=item, user=user)
                item = review_services.item_claim_next(user=user)
        if item is None:
            return False
        event_id = item.candidate.interaction.event_id
        reject = _rejects(event_id)
        if item.reviews_done and _disagrees(event_id, week):
            reject = not reject
        with _at(clock + timedelta(minutes=REVIEW_MINUTES - 1)):
            review_services.review_submit(
                item=item,
                reviewer=user,
                decision=Decision.REJECT if reject else Decision.APPROVE,
                reject_reason=REJECT_REASON if reject else "",
                **RUBRIC,
            )
        self.tally.reviews += 1
        return True

    def adjudicate(self, day: int) -> None:
        clock = self.moment(day, 14)
        items = ReviewItem.objects.filter(status=ReviewItem.Status.ADJUDICATION).order_by("pk")
        for item in items.select_related("candidate__interaction"):
            clock += timedelta(minutes=REVIEW_MINUTES)
            reject = _rejects(item.candidate.interaction.event_id)
            with _at(clock):
                review_services.item_claim(item=item, user=self.curator)
                review_services.outcome_adjudicate(
                    item=item,
                    curator=self.curator,
                    decision=Decision.REJECT if reject else Decision.APPROVE,
                    reject_reason=REJECT_REASON if reject else "",
                )
            self.tally.adjudicated += 1

    # --- a cycle: freeze, train, gate, decide -------------------------------------------------

    def cycle(self, *, day: int, dataset: Dataset) -> None:
        with _at(self.moment(day, 17.5)):
            services.gold_pairs_sync()
        if not GoldPair.objects.filter(kind=PairKind.PREFERENCE).exists():
            self.stdout.write(NOTHING_TO_FREEZE)
            return
        with _at(self.moment(day, 18)):
            version, created = services.dataset_version_freeze(
                dataset=dataset, user=self.admin, now=self.moment(day, 18)
            )
        if not created:
            self.stdout.write(NOTHING_NEW.format(version=version))
            return
        counts = version.manifest["counts"]
        self.stdout.write(
            FROZEN.format(
                version=version,
                day=self.moment(day, 18).date(),
                train=counts["train"],
                eval=counts["eval"],
            )
        )
        shortfall = selectors.eval_shortfall(version=version)
        if shortfall is not None:
            # A small demo (--interactions): the run would fail at once; say why instead.
            self.stdout.write(SHORT.format(version=version, **shortfall))
            return
        with _at(self.moment(day, 18.5)):
            demo_base_model(stdout=self.stdout)
        # Trained later, at this simulated time, by flywheel_site.demo.cycles.

    def run(self, dataset: Dataset) -> None:
        accounts.demo_policy_first_stamp(when=self.start)
        for day in range(WINDOW_DAYS):
            progress.progress_set(text=progress.SIMULATING.format(day=day + 1, of=WINDOW_DAYS))
            with _at(self.moment(day, 7)):
                self.policy(day)
                self.curate(self.moment(day, 7))
            self.review_day(day)
            if day % 7 in ADJUDICATION_WEEKDAYS:
                self.adjudicate(day)
            if day in CYCLE_DAYS:
                self.cycle(day=day, dataset=dataset)
        # The last hours before the reference: curated under the policy that stays in force,
        # left for people to review.
        with _at(self.reference):
            final = accounts.demo_policy_apply(changes=FINAL_POLICY, note=FINAL_POLICY_NOTE)
            self.curate(self.reference + timedelta(days=1))
        self.stdout.write(POLICY_IN_FORCE.format(version=final.version, **FINAL_POLICY))
        names = " and ".join(r.username for r in self.reviewers)
        self.stdout.write(CURATED.format(**self.curated))
        self.stdout.write(
            REVIEWED.format(
                days=len(self.tally.days),
                reviews=self.tally.reviews,
                reviewers=names,
                adjudicated=self.tally.adjudicated,
                curator=self.curator.username if self.curator else "nobody",
            )
        )
        self.stdout.write(GOLD.format(total=GoldPair.objects.count()))


def demo_dataset(*, user, when: datetime) -> Dataset:
    dataset = Dataset.objects.filter(name=DATASET_NAME).first()
    if dataset is None:
        with _at(when):
            dataset = services.dataset_create(
                name=DATASET_NAME,
                description=DATASET_DESCRIPTION,
                user=user,
                lag_days=0,
                eval_fraction=DATASET_EVAL_FRACTION,
                train_threshold=DATASET_THRESHOLD,
            )
    return dataset


def _corpus(limit: int = 600) -> list[str]:
    """Demo texts, so the tiny tokenizer's merges fit the words it will train on."""
    texts: list[str] = []
    for prompt, chosen, rejected in GoldPair.objects.order_by("pk").values_list(
        "prompt", "chosen", "rejected"
    )[:limit]:
        texts.extend(m.get("content", "") for m in prompt if isinstance(m, dict))
        texts.extend(t for t in (chosen, rejected) if t)
    return texts


def demo_base_model(*, stdout) -> Path:
    path = Path(settings.FLYWHEEL_BASE_MODEL).absolute()
    if (path / "config.json").is_file():
        stdout.write(BASE_EXISTS.format(path=path))
    else:
        build_tiny_lm(path, corpus=_corpus())
        stdout.write(BASE_BUILT.format(path=path))
    return path


def demo_loop_load(*, stdout, reference: datetime, shift: timedelta = timedelta(0)) -> None:
    """After the demo traffic is ingested: six simulated weeks of curation, review, gold,
    dataset versions, training, gating and promotion (see the module docstring)."""
    simulation = Simulation(reference=reference, shift=shift, stdout=stdout)
    dataset = demo_dataset(user=simulation.admin, when=simulation.start)
    stdout.write(
        DATASET.format(
            name=dataset.name, eval=dataset.eval_fraction, threshold=dataset.train_threshold
        )
    )
    frozen = dataset.versions.exclude(status=DatasetVersion.Status.DRAFT)
    if frozen.exists():
        stdout.write(ALREADY_SIMULATED.format(n=frozen.count()))
    else:
        simulation.run(dataset)
    if GoldPair.objects.exists():
        path = demo_base_model(stdout=stdout)
        stdout.write(BASE_HINT.format(path=path))
