"""Batch ingest counts the rollup facts of the interactions it creates from the rows it
wrote, not by reading them back: the counts still equal a rebuild from the raw tables
after replays (duplicates count nothing), repeats inside a batch, feedback on interactions
of the same batch, of earlier batches and of later ones (orphans, linked and counted when
their interaction comes), edits, the direct COPY path and the staging path, and
occurred_at offsets that put an event on another UTC day than its local one."""

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from curation.rollups import CURATION_TABLE, curation_metrics_rebuild
from curation.services import batch_ingest
from tests.support import factories
from tests.support.curation import source
from tests.support.metrics import rollup_counts

pytestmark = pytest.mark.django_db

START = datetime(2026, 10, 1, 22, 30, tzinfo=UTC)
KINDS = ("thumbs_up", "thumbs_down", "rating", "edited", "copied")


def _when(rng: random.Random) -> str:
    # Near midnight UTC, with offsets on both sides: the local day is often not the UTC one.
    moment = START + timedelta(days=rng.randint(0, 2), minutes=rng.randint(0, 180))
    return moment.astimezone(timezone(timedelta(hours=rng.choice([-9, -1, 0, 2, 11])))).isoformat()


class Traffic:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.n = 0
        self.sent: list[dict] = []  # interactions sent so far, replayed at times

    def _event(self) -> str:
        self.n += 1
        return f"ev-{self.n}"

    def feedback(self, interaction_event_id: str) -> dict:
        kind = self.rng.choice(KINDS)
        extra = {"value": self.rng.randint(1, 5)} if kind == "rating" else {}
        if kind == "edited":
            extra["final_text"] = "A better answer, written by the user."
        return factories.feedback(
            interaction_event_id, self._event(), kind=kind, occurred_at=_when(self.rng), **extra
        )

    def batch(self) -> dict:
        rng = self.rng
        interactions = []
        for _ in range(rng.randint(0, 5)):
            item = factories.interaction(
                self._event(),
                occurred_at=_when(rng),
                task_type=rng.choice(["support", "search"]),
                model=rng.choice(["bot-a", "bot-b"]),
            )
            interactions.append(item)
        replays = rng.sample(self.sent, min(len(self.sent), rng.choice([0, 0, 1, 2])))
        if interactions and rng.random() < 0.2:  # the same event twice in one batch
            replays.append(interactions[0])
        feedback = []
        for item in interactions:
            if rng.random() < 0.6:
                feedback.append(self.feedback(item["event_id"]))
        if self.sent and rng.random() < 0.5:
            feedback.append(self.feedback(rng.choice(self.sent)["event_id"]))
        if rng.random() < 0.4:  # ahead of its interaction: an orphan until it comes
            feedback.append(self.feedback(f"ev-{self.n + rng.randint(1, 4)}"))
        if feedback and rng.random() < 0.2:  # a feedback event replayed
            feedback.append(dict(feedback[0]))
        edits = []
        if rng.random() < 0.3:
            edits.append(factories.edit(event_id=self._event(), occurred_at=_when(rng)))
        all_interactions = interactions + replays
        rng.shuffle(all_interactions)
        self.sent.extend(interactions)
        return {"interactions": all_interactions, "feedback": feedback, "edits": edits}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batch_rollups_equal_a_rebuild_through_replays_orphans_and_edits(seed):
    traffic = Traffic(seed)
    created = 0
    for _ in range(25):
        body = traffic.batch()
        result = batch_ingest(source=source(), **body)
        assert result["rejected"] == 0, result
        created += result["created"]
        if traffic.rng.random() < 0.3:  # the whole batch again: all duplicates
            again = batch_ingest(source=source(), **body)
            assert again["created"] == 0, again
    assert created > 50
    incremental = rollup_counts(CURATION_TABLE)
    assert any(key[4] == "with_feedback" for key in incremental)
    curation_metrics_rebuild()
    assert rollup_counts(CURATION_TABLE) == incremental
