"""The daily rollups kept by the writes equal a rebuild from the raw tables, after a
seeded random mix of ingest (late feedback, feedback on curated rows), curation,
re-curation, sweeps, reviews (disagreements and adjudication), gold, freezes and
quarantines, skips escalated to curators, the explorer's bulk actions and single-pair
quarantines, spread over several days."""

import random
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection

from curation import pipeline
from curation.actions import candidate_action_create
from curation.models import Candidate, CandidateAction, CurationMetricDay
from curation.schemas import InteractionIn
from curation.selectors import candidates_filtered
from curation.services import batch_ingest, interaction_ingest
from review import services as review_services
from review.agreement import krippendorff_alpha
from review.rollups import nominal_alpha
from tests.support import factories
from tests.support.curation import GOOD_ANSWER, GOOD_EDIT, no_toxicity, source
from tests.support.review import RUBRIC
from training.datasets import services as training_services
from training.datasets.rollups import metrics_rebuild
from training.models import DatasetVersion, GoldPair, Quarantine

pytestmark = pytest.mark.django_db(transaction=False)

START = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
TABLES = ("curation_curationmetricday", "review_reviewmetricday", "training_trainingmetricday")
FEEDBACK_KINDS = ("thumbs_up", "thumbs_down", "edited", "rating", "copied")


def snapshot() -> dict:
    """Every rollup summed over shards, zero counts left out (a fact subtracted and
    not added back leaves a zero row; a rebuild writes none)."""
    out = {}
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(
                f"SELECT day, source_id, task_type, model, metric, key, sum(n) FROM {table} "  # noqa: S608
                "GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(n) <> 0"
            )
            out[table] = {tuple(row[:6]): row[6] for row in cursor.fetchall()}
    return out


class Mix:
    def __init__(self, seed: int, people):
        self.rng = random.Random(seed)
        self.people = people
        self.n = 0
        self.events: list[str] = []

    def _feedback(self, event_id: str) -> dict:
        kind = self.rng.choice(FEEDBACK_KINDS)
        extra = {"value": self.rng.randint(1, 5)} if kind == "rating" else {}
        if kind == "edited":
            extra["final_text"] = GOOD_EDIT
        self.n += 1
        day = START + timedelta(days=self.rng.randint(0, 6), minutes=self.n)
        return factories.feedback(
            event_id, f"fb-{self.n}", kind=kind, occurred_at=day.isoformat(), **extra
        )

    def ingest(self):
        interactions, feedback = [], []
        for _ in range(self.rng.randint(1, 6)):
            self.n += 1
            event_id = f"ev-{self.n}"
            day = START + timedelta(days=self.rng.randint(0, 6), hours=self.rng.randint(0, 23))
            interactions.append(
                factories.interaction(
                    event_id,
                    occurred_at=day.isoformat(),
                    response=GOOD_ANSWER + f" Ticket {self.n}.",
                    task_type=self.rng.choice(["support", "search"]),
                    model=self.rng.choice(["bot-a", "bot-b"]),
                )
            )
            self.events.append(event_id)
            if self.rng.random() < 0.7:
                feedback.append(self._feedback(event_id))
        if self.events and self.rng.random() < 0.5:  # feedback on an older, maybe curated row
            feedback.append(self._feedback(self.rng.choice(self.events)))
        if self.rng.random() < 0.3:  # feedback ahead of its interaction: linked later
            feedback.append(self._feedback(f"ev-{self.n + 1}"))
        result = batch_ingest(
            source=source(), interactions=interactions, feedback=feedback, edits=[]
        )
        assert result["rejected"] == 0, result

    def ingest_one(self):
        """The single-event route, written by one statement; half the time feedback
        for it came first, which that statement links and counts."""
        self.n += 1
        event_id = f"ev-{self.n}"
        if self.rng.random() < 0.5:
            result = batch_ingest(
                source=source(), interactions=[], feedback=[self._feedback(event_id)], edits=[]
            )
            assert result["rejected"] == 0, result
        day = START + timedelta(days=self.rng.randint(0, 6), hours=self.rng.randint(0, 23))
        item = factories.interaction(
            event_id,
            occurred_at=day.isoformat(),
            response=GOOD_ANSWER + f" Ticket {self.n}.",
            model=self.rng.choice(["bot-a", "bot-b"]),
        )
        interaction_ingest(source=source(), item=InteractionIn.model_validate(item))
        self.events.append(event_id)

    def curate(self):
        pipeline.sweep(grace_seconds=0)

    def recurate(self):
        policy = no_toxicity(min_words=self.rng.choice([5, 20, 40]), reviews_required=2)
        pipeline.candidates_recurate(policy=policy)

    def review(self):
        for person in self.people["annotators"]:
            item = review_services.item_claim_next(user=person)
            if item is None:
                continue
            decision = self.rng.choice(["approve_edit", "approve_edit", "reject"])
            extra = (
                {"reject_reason": "Wrong or misleading"}
                if decision == "reject"
                else {"final_text": GOOD_EDIT}
            )
            review_services.review_submit(
                item=item, reviewer=person, decision=decision, **RUBRIC, **extra
            )

    def adjudicate(self):
        curator = self.people["curator"]
        item = review_services.item_claim_next(user=curator, mode="adjudication")
        if item is not None:
            review_services.outcome_adjudicate(
                item=item, curator=curator, decision="approve_edit", final_text=GOOD_EDIT
            )

    def skip(self):
        # With FLYWHEEL_REVIEW_SKIPS_TO_CURATOR at 1, a skip escalates the item to the
        # adjudication backlog (a rollup fact).
        person = self.rng.choice(self.people["annotators"])
        item = review_services.item_claim_next(user=person)
        if item is not None:
            review_services.item_skip(item=item, user=person)

    def bulk_action(self, *, kind: str | None = None, status: str | None = None):
        """The candidates explorer: reject, or send to the queue, a filtered set."""
        kind = kind or self.rng.choice(["reject", "queue"])
        filters = {"status": status or self.rng.choice(["passed", "held"])}
        max_id = Candidate.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        expected = candidates_filtered(filters).filter(pk__lte=max_id).count()
        if expected:
            candidate_action_create(
                user=self.people["curator"], kind=kind, reason="mix", filters=filters,
                max_id=max_id, expected=expected,
            )  # fmt: skip

    def pair_quarantine(self):
        # Picked by the seeded rng (not the database's random order): a seed replays.
        pairs = list(GoldPair.objects.order_by("pk"))
        pair = self.rng.choice(pairs) if pairs else None
        if pair is not None and not Quarantine.objects.filter(pair=pair).exists():
            training_services.quarantine_apply(kind="pair", pair=pair, reason="one bad pair")

    def approve_until_gold(self):
        """Which candidates are drawn, and so which items are claimed, hashes their ids
        (they depend on what ran before in the process): approve what is claimed,
        adjudicating disagreements, until an approved outcome makes a gold pair (an
        approved audit item of a failed candidate makes none)."""
        for _ in range(20):
            training_services.gold_pairs_sync()
            if GoldPair.objects.exists():
                return
            for person in [*self.people["annotators"], None]:
                if person is None:
                    self.adjudicate()
                    continue
                item = review_services.item_claim_next(user=person)
                if item is not None:
                    review_services.review_submit(
                        item=item, reviewer=person, decision="approve_edit",
                        final_text=GOOD_EDIT, **RUBRIC,
                    )  # fmt: skip
        raise AssertionError("nothing to approve")

    def freeze(self):
        training_services.dataset_version_freeze(dataset=self.people["dataset"], user=None)

    def quarantine(self):
        version = DatasetVersion.objects.filter(status="frozen").order_by("-number").first()
        if version is not None:
            training_services.quarantine_apply(
                kind="dataset_version", dataset_version=version, reason="bad batch"
            )


# One seed in the inner loop; all three in `make test`.
@pytest.mark.parametrize(
    "seed", [1, pytest.param(2, marks=pytest.mark.slow), pytest.param(3, marks=pytest.mark.slow)]
)
def test_incremental_rollups_equal_a_full_rebuild(
    seed, annotator, annotator2, curator, admin, settings
):
    settings.FLYWHEEL_REVIEW_SKIPS_TO_CURATOR = 1
    no_toxicity(min_words=5, sample_rate=1.0, sft_rate=1.0, reviews_required=2)
    dataset = training_services.dataset_create(name="support", user=admin, lag_days=0)
    mix = Mix(seed, {"annotators": [annotator, annotator2], "curator": curator, "dataset": dataset})
    steps = [
        (mix.ingest, 6),
        (mix.ingest_one, 2),
        (mix.curate, 3),
        (mix.review, 3),
        (mix.adjudicate, 1),
        (mix.recurate, 1),
        (mix.freeze, 1),
        (mix.quarantine, 0.3),
        (mix.skip, 1),
        (mix.bulk_action, 2),
        (mix.pair_quarantine, 1),
    ]
    actions, weights = zip(*steps, strict=True)
    with time_machine.travel(START + timedelta(days=8), tick=False) as clock:
        for _ in range(50):
            mix.rng.choices(actions, weights)[0]()
            clock.shift(timedelta(hours=mix.rng.randint(1, 20)))
        mix.curate()
        # The draws hash candidate ids, so what each step finds depends on the sequences
        # (what ran before in the process): one bulk action on what passed, and gold,
        # whatever the draws were.
        mix.bulk_action(kind="queue", status="passed")
        mix.approve_until_gold()
        mix.freeze()
    incremental = snapshot()
    assert CandidateAction.objects.exists()
    assert sum(incremental[TABLES[0]].values()) > 0
    assert any(k[4] == "lag" for k in incremental[TABLES[0]])
    assert any(k[4] in ("approved", "rejected") for k in incremental[TABLES[1]])
    assert any(k[4] == "agree" for k in incremental[TABLES[1]])
    assert any(k[4] == "gold" for k in incremental[TABLES[2]])
    metrics_rebuild()
    assert snapshot() == incremental
    assert not CurationMetricDay.objects.exclude(shard=0).exists()


def test_a_rebuild_since_a_day_keeps_the_days_before(annotator, admin):
    no_toxicity(min_words=5, sample_rate=1.0)
    with time_machine.travel(START + timedelta(days=8), tick=False):
        mix = Mix(7, {})
        for _ in range(5):
            mix.ingest()
        mix.curate()
    before = snapshot()
    CurationMetricDay.objects.filter(day__gte=date(2026, 10, 4)).update(n=999)
    CurationMetricDay.objects.filter(day__lt=date(2026, 10, 4)).update(n=1)
    call_command("metrics_rebuild", since="2026-10-04")
    after = snapshot()[TABLES[0]]
    for key, n in before[TABLES[0]].items():
        assert after[key] == (n if key[0] >= date(2026, 10, 4) else 1)


def test_alpha_from_the_rollup_pairs_equals_krippendorffs_alpha():
    rng = random.Random(5)
    units = {
        item: [rng.choice(["approve", "approve", "approve_edit", "reject"]) for _ in range(m)]
        for item, m in enumerate(rng.choice([2, 2, 3]) for _ in range(40))
    }
    pairs: dict[str, int] = {}
    for values in units.values():
        for i, a in enumerate(values):
            for j, b in enumerate(values):
                if i != j:
                    key = f"{a}|{b}|{len(values)}"
                    pairs[key] = pairs.get(key, 0) + 1
    assert nominal_alpha(pairs) == pytest.approx(krippendorff_alpha(units, level="nominal"))
    assert nominal_alpha({"approve|approve|2": 4}) is None
