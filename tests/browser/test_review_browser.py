"""The review screen in a real Chromium driven by Playwright, against a live
server on the test database: keyboard-only reviewing, an annotator kept out of
admin pages, two browsers never given the same item. Saves a screenshot of the
review screen to artifacts/review-screen.png."""

from review.models import Review, ReviewItem, ReviewOutcome
from tests.support.browser import ARTIFACTS, start, wait_for_focus, wait_for_screen
from tests.support.personas import PASSWORD
from tests.support.review import make_items


def test_an_annotator_reviews_three_items_from_the_keyboard_alone(
    browser_page, live_server, annotator
):
    approve_item, reject_item, edit_item = make_items(3)
    page = browser_page(annotator)

    start(page)  # "Start reviewing" has autofocus
    page.wait_for_url(f"{live_server.url}/review/items/{approve_item.pk}/")
    page.keyboard.press("?")
    assert page.locator("#keys-help").is_visible()
    page.keyboard.press("?")

    for key in "455":  # accuracy, helpfulness, safety: each moves to the next field
        page.keyboard.press(key)
    page.keyboard.press("a")
    wait_for_screen(page, f"Item #{reject_item.pk}")
    assert page.url == f"{live_server.url}/review/items/{reject_item.pk}/"  # pushed by HTMX

    for key in "332":
        page.keyboard.press(key)
    page.keyboard.press("r")
    wait_for_focus(page, "#reject-panel select")
    page.keyboard.press("ArrowDown")  # "Wrong or misleading"
    page.keyboard.press("Enter")
    wait_for_screen(page, f"Item #{edit_item.pk}")

    page.keyboard.press("k")  # back to the first field, to show j/k
    page.keyboard.press("j")
    page.keyboard.press("k")
    for key in "545":
        page.keyboard.press(key)
    page.keyboard.press("e")
    # Typed before the editor has focus, these letters would be shortcuts ("a" approves).
    wait_for_focus(page, "#edit-panel textarea")
    page.keyboard.type(" Call support if the link has expired.")
    page.locator("#three-way ins", has_text="Call support").wait_for()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review-screen.png"), full_page=True)
    page.keyboard.press("Control+Enter")
    page.locator("#review-screen h1", has_text="Queue empty").wait_for()

    reviews = {r.item_id: r for r in Review.objects.filter(reviewer=annotator)}
    approved, rejected, edited = (reviews[i.pk] for i in (approve_item, reject_item, edit_item))
    assert (approved.decision, approved.accuracy, approved.helpfulness, approved.safety) == (
        "approve",
        4,
        5,
        5,
    )
    assert (rejected.decision, rejected.reject_reason) == ("reject", "Wrong or misleading")
    assert (rejected.accuracy, rejected.helpfulness, rejected.safety) == (3, 3, 2)
    assert edited.decision == "approve_edit"
    assert edited.final_text.endswith(
        "thirty minutes; if it is missing, look in spam first. "
        "Call support if the link has expired."
    )
    assert (edited.accuracy, edited.helpfulness, edited.safety) == (5, 4, 5)
    outcomes = dict(ReviewOutcome.objects.values_list("item_id", "result"))
    assert outcomes == {
        approve_item.pk: "approved",
        reject_item.pk: "rejected",
        edit_item.pk: "approved",
    }
    assert ReviewOutcome.objects.get(item=edit_item).chosen == edited.final_text
    assert not ReviewItem.objects.filter(lease_holder__isnull=False).exists()


def test_the_screen_works_with_javascript_disabled(browser_page, live_server, annotator):
    first, second = make_items(2)
    page = browser_page(java_script_enabled=False)
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", annotator.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.click("form.start button")
    page.wait_for_url(f"{live_server.url}/review/items/{first.pk}/")
    # Without JavaScript the reject and edit panels are simply open.
    assert page.locator("#reject-panel").is_visible()
    assert page.locator("#edit-panel textarea").is_visible()
    for field, value in (("accuracy", 2), ("helpfulness", 2), ("safety", 1)):
        page.check(f"input[name={field}][value='{value}']")
    page.select_option("select[name=reject_reason]", "Unsafe or toxic")
    page.click("button[value=reject]")
    page.wait_for_url(f"{live_server.url}/review/items/{second.pk}/")
    assert "Review saved." in page.content()
    saved = Review.objects.get(reviewer=annotator)
    assert (saved.item_id, saved.decision, saved.reject_reason, saved.safety) == (
        first.pk,
        "reject",
        "Unsafe or toxic",
        1,
    )


def test_an_annotator_cannot_open_admin_or_curator_pages(browser_page, live_server, annotator):
    page = browser_page(annotator)
    response = page.goto(f"{live_server.url}/review/stats/")
    assert response.status == 403
    assert "Your role does not allow this page." in page.content()
    response = page.goto(f"{live_server.url}/admin/")
    assert response.status == 403
    assert "Site administration" not in page.content()
    assert "Your role does not allow this page." in page.content()


def test_two_browsers_never_get_the_same_item(browser_page, annotator, annotator2):
    make_items(3)
    first = browser_page(annotator)
    second = browser_page(annotator2)
    start(first)
    start(second)
    first.wait_for_url("**/review/items/*/")
    second.wait_for_url("**/review/items/*/")
    assert first.url != second.url
    held = dict(
        ReviewItem.objects.filter(lease_holder__isnull=False).values_list(
            "lease_holder__username", "pk"
        )
    )
    assert first.url.endswith(f"/items/{held['annie']}/")
    assert second.url.endswith(f"/items/{held['arthur']}/")
    # Reloading is resuming: nobody is handed a second item.
    second.reload()
    assert second.url.endswith(f"/items/{held['arthur']}/")
