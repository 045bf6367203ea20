"""Concurrent claiming against real PostgreSQL: threads, each with its own
database connection, released together by a barrier."""

import threading
import time
from collections import Counter

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection

from review import services
from review.models import Review, ReviewItem
from tests.support.review import RUBRIC, make_items

# Committed data, seen across connections; flushed afterwards.
pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 20


def annotators(n: int) -> list[User]:
    # get_or_create: an earlier transactional test may have flushed the groups
    # the roles migration made.
    group, _ = Group.objects.get_or_create(name="annotator")
    users = User.objects.bulk_create([User(username=f"crowd-{i}") for i in range(n)])
    for user in users:
        user.groups.add(group)
    return users


def together(users, work) -> dict:
    """Run ``work(user)`` for every user in its own thread, all starting at once."""
    barrier = threading.Barrier(len(users))
    results: dict = {}
    errors: list = []

    def run(user):
        try:
            barrier.wait(timeout=30)
            results[user.pk] = work(user)
        except Exception as error:  # reported below, with the thread's user
            errors.append((user.username, repr(error)))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return results


def claim(user):
    item = services.item_claim_next(user=user)
    return None if item is None else item.pk


def test_twenty_annotators_claiming_at_once_never_share_an_item():
    users = annotators(THREADS)
    make_items(THREADS + 10)
    results = together(users, claim)
    claimed = list(results.values())
    assert None not in claimed
    assert len(set(claimed)) == THREADS
    holders = dict(
        ReviewItem.objects.filter(lease_holder__isnull=False).values_list("pk", "lease_holder_id")
    )
    assert holders == {item: user for user, item in results.items()}


def test_when_items_run_short_each_one_goes_to_exactly_one_claimer():
    users = annotators(THREADS)
    items = make_items(5)
    results = together(users, claim)
    won = [item for item in results.values() if item is not None]
    assert sorted(won) == sorted(item.pk for item in items)
    assert list(results.values()).count(None) == THREADS - 5


def test_a_crowd_reviewing_until_the_queue_is_empty_gives_each_item_exactly_n_reviews():
    users = annotators(THREADS)
    items = make_items(12, reviews_required=3)

    def open_for(user) -> bool:
        # Work this reviewer may still do: queued items they have not reviewed. A claim
        # can find none while others hold the last leases; a reviewer who stopped then
        # could leave an item short of its reviews on a loaded machine (35 of 36 seen).
        return (
            ReviewItem.objects.filter(status=ReviewItem.Status.QUEUED)
            .exclude(reviews__reviewer=user)
            .exists()
        )

    def work(user):
        done = 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            item = services.item_claim_next(user=user)
            if item is None:
                if not open_for(user):
                    break
                time.sleep(0.01)
                continue
            services.review_submit(item=item, reviewer=user, decision="approve", **RUBRIC)
            done += 1
        return done

    results = together(users, work)
    assert sum(results.values()) == 12 * 3
    per_item = Counter(Review.objects.values_list("item_id", flat=True))
    assert per_item == {item.pk: 3 for item in items}
    pairs = list(Review.objects.values_list("item_id", "reviewer_id"))
    assert len(pairs) == len(set(pairs))  # nobody reviewed an item twice
    assert set(ReviewItem.objects.values_list("status", "reviews_done")) == {("done", 3)}
    assert not ReviewItem.objects.filter(lease_holder__isnull=False).exists()
