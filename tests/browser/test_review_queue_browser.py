"""The queue picker, the mix and rapid keys in a real Chromium (Playwright) against a
live server; every outcome is read back from the database. Saves the annotator's
home with the picker and progress strip to artifacts/review-queue.png."""

import time

from django.utils import timezone

from review.models import Review, ReviewItem, ReviewSkip
from tests.support.browser import ARTIFACTS, start, wait_for_screen
from tests.support.review import make_items

APPROVE = "455a"  # three rubric scores, then approve
SKIP = "s"


def until(condition, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def served_kinds(user) -> list[str]:
    return list(
        ReviewSkip.objects.filter(user=user).order_by("pk").values_list("item__kind", flat=True)
    )


def test_rapid_keys_across_items_each_reach_the_intended_item(browser_page, annotator):
    items = make_items(10)  # served in this order (by priority)
    intended = ["approve" if k % 2 == 0 else "skip" for k in range(10)]
    page = browser_page(annotator)
    start(page)
    wait_for_screen(page, f"Item #{items[0].pk}")
    # Every key at once, without waiting for any item to load: keys pressed while
    # the next item loads are held and replayed on it.
    for action in intended:
        for key in APPROVE if action == "approve" else SKIP:
            page.keyboard.press(key)
    page.locator("#review-screen h1", has_text="Queue empty").wait_for(timeout=30_000)
    assert page.locator("#held-keys").count() == 0  # no key was left over or dropped

    reviews = {r.item_id: r for r in Review.objects.filter(reviewer=annotator)}
    skips = set(ReviewSkip.objects.filter(user=annotator).values_list("item_id", flat=True))
    for item, action in zip(items, intended, strict=True):
        if action == "approve":
            got = reviews[item.pk]
            assert (got.decision, got.accuracy, got.helpfulness, got.safety) == (
                "approve",
                4,
                5,
                5,
            ), item.pk
            assert item.pk not in skips
        else:
            assert item.pk in skips and item.pk not in reviews, item.pk
    assert len(reviews) == 5 and len(skips) == 5
    assert not ReviewItem.objects.filter(lease_holder__isnull=False).exists()


def test_keys_typed_for_the_next_item_never_land_on_a_refused_one(browser_page, annotator):
    first, _ = make_items(2)
    page = browser_page(annotator)
    start(page)
    wait_for_screen(page, f"Item #{first.pk}")
    # "a" without the rubric is refused (422): the same item comes back with its
    # message, and the "s" meant for the next item is not applied to it.
    page.keyboard.press("a")
    page.keyboard.press("s")
    page.locator("#held-keys", has_text="1 key not applied").wait_for()
    assert page.locator("#screen-error").is_visible()
    assert not ReviewSkip.objects.filter(user=annotator).exists()
    assert not Review.objects.filter(reviewer=annotator).exists()


def test_a_failed_renewal_tells_the_reviewer(browser_page, annotator):
    (item,) = make_items(1)
    page = browser_page(annotator)
    start(page)
    wait_for_screen(page, f"Item #{item.pk}")
    # The lease runs out behind the reviewer's back; their next key renews it.
    ReviewItem.objects.filter(pk=item.pk).update(
        lease_expires_at=timezone.now() - timezone.timedelta(minutes=1)
    )
    page.keyboard.press("j")
    alert = page.locator("#lease-status[role=alert]")
    alert.wait_for()
    assert "not leased to you any more" in alert.inner_text()


def test_a_renewal_the_server_fails_tells_the_reviewer(browser_page, annotator):
    (item,) = make_items(1)
    page = browser_page(annotator)
    start(page)
    wait_for_screen(page, f"Item #{item.pk}")
    renewals = []
    page.route(
        "**/renew/",
        lambda route: (renewals.append(1), route.fulfill(status=502, body="bad gateway")),
    )
    # A click anywhere renews the hold (at most once a minute), as a key does; a click on
    # the renewal element itself bubbles to the body like any other.
    page.locator("[data-renew]").dispatch_event("click")
    alert = page.locator("#lease-status[role=alert]")
    alert.wait_for()
    assert "Could not renew your hold on this item (the server answered 502)" in (
        alert.inner_text()
    )


def test_the_queue_picker_and_the_mix(browser_page, live_server, annotator, settings):
    settings.FLYWHEEL_REVIEW_MIX = {"preference": 3, "needs_answer": 1}
    # needs_answer items outrank the pairs: by priority alone they would flood the queue.
    make_items(4, kind="needs_answer", priority=0.9)
    make_items(8, kind="preference", priority=0.1)
    page = browser_page(annotator)

    page.select_option("#queue-kind", "needs_answer")
    page.click("#queue-picker button[type=submit]")
    page.locator("#queue-label", has_text="Needs an answer").wait_for()
    assert page.locator("#left-in-queue").inner_text() == "4"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review-queue.png"), full_page=True)
    start(page)
    page.wait_for_url("**/review/items/*/")
    wait_for_screen(page, "Item #")
    for _ in range(4):
        page.keyboard.press("s")
    page.locator("#review-screen h1", has_text="Queue empty").wait_for()
    assert served_kinds(annotator) == ["needs_answer"] * 4

    ReviewSkip.objects.filter(user=annotator).delete()
    ReviewItem.objects.update(skip_count=0)
    page.goto(f"{live_server.url}/review/")
    assert page.locator("#queue-kind").input_value() == "needs_answer"  # remembered
    page.select_option("#queue-kind", "all")
    page.click("#queue-picker button[type=submit]")
    page.locator("#queue-label", has_text="All (mixed)").wait_for()
    start(page)
    page.wait_for_url("**/review/items/*/")
    wait_for_screen(page, "Item #")
    for _ in range(8):
        page.keyboard.press("s")
    # Eight skips, then the ninth item is on screen (four are left).
    page.locator("#review-screen[data-item]").wait_for()
    until(lambda: ReviewSkip.objects.filter(user=annotator).count() == 8)
    kinds = served_kinds(annotator)
    assert kinds[:8] == ["preference", "preference", "needs_answer", "preference"] * 2
