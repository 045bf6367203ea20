"""Known data for the metrics tests, put in through the real paths: the ingest API,
the curation sweep, the review services, a freeze and a registered model."""

from datetime import UTC, datetime, timedelta

import time_machine
from django.db import connection

from curation import pipeline
from review import services as review_services
from review.models import ReviewItem
from tests.support import factories
from tests.support.curation import GOOD_ANSWER, GOOD_EDIT, no_toxicity
from tests.support.review import RUBRIC
from tests.support.training import registered
from training.datasets import services as training_services

T0 = datetime(2026, 11, 19, 10, 0, tzinfo=UTC)  # ingest
CURATED = T0 + timedelta(seconds=20)
REVIEWED = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
FROZEN = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
PROMOTED = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)
ASKED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
D18, D19, D20 = "2026-11-18", "2026-11-19", "2026-11-20"


def rollup_counts(table: str) -> dict:
    """A rollup table's counts summed over shards, zero counts left out (a fact subtracted
    and not added back leaves a zero row; a rebuild writes none)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT day, source_id, task_type, model, metric, key, sum(n) FROM {table} "  # noqa: S608
            "GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(n) <> 0"
        )
        return {tuple(row[:6]): row[6] for row in cursor.fetchall()}


def at(day: str, hour: int = 12) -> str:
    return f"{day}T{hour:02d}:00:00Z"


def interaction(event_id: str, day: str, task_type: str, model: str) -> dict:
    return factories.interaction(
        event_id,
        occurred_at=at(day),
        task_type=task_type,
        model=model,
        response=f"{GOOD_ANSWER} ({event_id})",
    )


def flywheel_loop(api, annotator, admin):
    """Four interactions (three on the 18th, one on the 19th), three linked feedback
    events and one whose interaction never came, curated 20 s after ingest; one item
    approved and one rejected; a freeze and a promoted model."""
    no_toxicity(min_words=1, quality_min=0.0, sample_rate=1.0, sft_rate=1.0)
    with time_machine.travel(T0, tick=False):
        answer = api.post(
            "/api/v1/batch",
            {
                "interactions": [
                    interaction("i1", D18, "support", "bot-a"),
                    interaction("i2", D18, "support", "bot-a"),
                    interaction("i3", D18, "support", "bot-a"),
                    interaction("i4", D19, "search", "bot-b"),
                ],
                "feedback": [
                    factories.feedback("i1", "f1", kind="thumbs_up", occurred_at=at(D18, 13)),
                    factories.feedback(
                        "i2", "f2", kind="edited", final_text=GOOD_EDIT, occurred_at=at(D19, 8)
                    ),
                    factories.feedback("i4", "f3", kind="thumbs_down", occurred_at=at(D19, 13)),
                    factories.feedback("nope", "f4", kind="thumbs_up", occurred_at=at(D19, 13)),
                ],
            },
        )
        assert answer.status_code == 200 and answer.json()["created"] == 8, answer.json()
    with time_machine.travel(CURATED, tick=False):
        pipeline.sweep(grace_seconds=0)
    assert ReviewItem.objects.count() >= 2
    with time_machine.travel(REVIEWED, tick=False):
        first = review_services.item_claim_next(user=annotator)
        review_services.review_submit(
            item=first, reviewer=annotator, decision="approve_edit", final_text=GOOD_EDIT, **RUBRIC
        )
        second = review_services.item_claim_next(user=annotator)
        review_services.review_submit(
            item=second,
            reviewer=annotator,
            decision="reject",
            reject_reason="Wrong or misleading",
            **RUBRIC,
        )
    with time_machine.travel(FROZEN, tick=False):
        dataset = training_services.dataset_create(name="support", user=admin, lag_days=0)
        version, _ = training_services.dataset_version_freeze(dataset=dataset, user=admin)
    with time_machine.travel(PROMOTED, tick=False):
        registered(
            version,
            name="support-v1",
            status="promoted",
            metrics={
                "normalised_accuracy": 0.8,
                "gate": {
                    "metric": "normalised_accuracy",
                    "candidate": 0.8,
                    "baseline": 0.75,
                    "delta": 0.05,
                    "delta_ci": [0.01, 0.09],
                    "n": 60,
                    "test": "paired bootstrap",
                    "passed": True,
                },
            },
            gate_metric="normalised_accuracy",
        )
    return annotator
