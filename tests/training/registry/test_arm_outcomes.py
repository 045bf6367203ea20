"""One arm's counts in one statement: the edits come back with the counts, each
interaction's most changed edit measured once, whatever else its users did."""

from datetime import UTC, datetime, timedelta

import pytest

from curation.models import Feedback, Interaction
from tests.support.curation import source
from training.registry.selectors import arm_outcomes, edit_distance

pytestmark = pytest.mark.django_db

T = datetime(2026, 11, 20, 12, tzinfo=UTC)
ANSWER = "hello there, the answer is forty two"


def served(n: int, feedback: list[tuple[str, str | None]], *, model="canary", at=T):
    interaction = Interaction.objects.create(
        source=source(), event_id=f"e{n}", occurred_at=at, received_at=at, model=model,
        messages=[{"role": "user", "content": "hi"}], response=ANSWER, curation_state="done",
    )  # fmt: skip
    for k, (kind, final_text) in enumerate(feedback):
        Feedback.objects.create(
            source=interaction.source, event_id=f"f{n}-{k}", interaction_event_id=f"e{n}",
            interaction=interaction, kind=kind, occurred_at=at, received_at=at,
            final_text=final_text,
        )  # fmt: skip


def test_each_interaction_counts_its_heaviest_edit_once(settings):
    settings.FLYWHEEL_HEAVY_EDIT_DISTANCE = 0.5
    light = ANSWER + "!"
    heavy = "something else entirely"
    served(1, [("edited", light), ("edited", heavy), ("thumbs_down", None)])  # bad already
    served(2, [("corrected", heavy)])  # bad only by its edit
    served(3, [("edited", light), ("thumbs_up", None)])
    served(4, [])
    served(5, [("edited", heavy)], model="control")  # the other arm
    served(6, [("edited", heavy)], at=T + timedelta(hours=2))  # after the window

    counts = arm_outcomes(serving_name="canary", start=T, end=T + timedelta(hours=1))

    assert counts["n"] == 4
    assert (counts["edited"], counts["corrected"], counts["thumbs_up"]) == (3, 1, 1)
    assert counts["heavy_edit"] == 2
    assert counts["bad_outcome"] == 2  # one thumbs down, one heavy edit with none
    worst = [edit_distance(ANSWER, heavy)] * 2 + [edit_distance(ANSWER, light)]
    assert counts["edit_distance_mean"] == pytest.approx(sum(worst) / 3)


def test_an_arm_without_traffic_counts_nothing():
    counts = arm_outcomes(serving_name="canary", start=T, end=T + timedelta(hours=1))
    assert counts["n"] == 0 and counts["heavy_edit"] == 0
    assert counts["edit_distance_mean"] is None
