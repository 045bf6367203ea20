"""The health verdict's "review backed up" rule on queue growth: a ratio and a minimum."""

import pytest

from training.metrics.selectors import HEALTHY, STALLING, health


def _verdict(*, now_depth: int, entered: int, decided: int = 0) -> dict:
    # Depth a week ago is read back from what entered and left since (see health()).
    return health(
        totals={},
        last_week={"queued": entered, "approved": decided},
        queue={"total": now_depth},
        cycles=[],
    )


@pytest.mark.parametrize(
    ("now_depth", "entered", "decided"),
    [
        (3, 3, 0),  # from 0 to 3: a day's sample waiting for its reviewer
        (24, 24, 0),  # from 0, one short of the minimum growth
        (14, 10, 0),  # from 4 to 14: more than the ratio, fewer than the minimum
        (120, 30, 0),  # from 90 to 120: the minimum, but a third, under the ratio
    ],
)
def test_a_queue_growing_by_a_few_items_or_under_the_ratio_is_not_backed_up(
    settings, now_depth, entered, decided
):
    settings.FLYWHEEL_HEALTH_QUEUE_GROWTH_MIN_ITEMS = 25
    settings.FLYWHEEL_HEALTH_QUEUE_GROWTH_MAX = 0.5
    verdict = _verdict(now_depth=now_depth, entered=entered, decided=decided)
    assert verdict == {"verdict": HEALTHY, "causes": []}


@pytest.mark.parametrize(
    ("now_depth", "entered", "decided", "week_ago"),
    [
        (25, 25, 0, 0),  # from 0 by the minimum
        (40, 40, 10, 10),  # from 10 to 40: 30 items, three times the queue
    ],
)
def test_a_queue_growing_past_both_the_minimum_and_the_ratio_is_backed_up(
    settings, now_depth, entered, decided, week_ago
):
    settings.FLYWHEEL_HEALTH_QUEUE_GROWTH_MIN_ITEMS = 25
    settings.FLYWHEEL_HEALTH_QUEUE_GROWTH_MAX = 0.5
    verdict = _verdict(now_depth=now_depth, entered=entered, decided=decided)
    assert verdict == {
        "verdict": STALLING,
        "causes": [f"review backed up: the queue grew from {week_ago} to {now_depth} in a week"],
    }
