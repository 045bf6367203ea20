"""The review screen keeps the reviewer's place (issue 22 §2), in a 1280x800 viewport: each
new item opens at its top after a keyboard submit, the key list opens over the screen where
the eye is, a refusal is said beside the focused control, and a key that does not apply
says so instead of doing nothing. Without JavaScript, a refused submit leaves a URL that
reopens the item."""

from review.models import Review
from tests.support.browser import start, wait_for_focus, wait_for_screen
from tests.support.review import make_items

SMALL = {"width": 1280, "height": 800}
IN_VIEW = """sel => { const r = document.querySelector(sel).getBoundingClientRect();
  return r.top >= 0 && r.bottom <= window.innerHeight && r.height > 0; }"""


def open_first(browser_page, annotator, count=2, **kind):
    items = make_items(count, **kind)
    page = browser_page(annotator)
    page.set_viewport_size(SMALL)
    start(page)
    wait_for_screen(page, f"Item #{items[0].pk}")
    return page, items


def test_each_new_item_opens_at_its_top_and_the_keys_open_in_view(browser_page, annotator):
    page, (first, second) = open_first(browser_page, annotator)
    page.keyboard.press("?")
    assert page.evaluate(IN_VIEW, "#keys-help")  # an overlay, not below the guidelines
    page.keyboard.press("Escape")
    assert page.locator("#keys-help").is_hidden()

    for key in "455":  # focusing the rubric scrolls the page down to it
        page.keyboard.press(key)
    assert page.evaluate("window.scrollY") > 0
    page.keyboard.press("a")
    wait_for_screen(page, f"Item #{second.pk}")

    assert page.evaluate("window.scrollY") == 0
    assert page.evaluate(IN_VIEW, "#review-screen h1")
    assert page.evaluate(IN_VIEW, "#review-screen .notice")  # "Review saved."
    assert Review.objects.get(item=first).decision == "approve"


def test_a_refusal_is_said_beside_the_focused_control(browser_page, annotator):
    page, (first, _) = open_first(browser_page, annotator)
    page.keyboard.press("5")  # one score of three: approving is refused
    page.keyboard.press("a")
    page.locator(".field-error").wait_for()
    wait_for_focus(page, "fieldset.rubric input")

    assert page.evaluate(IN_VIEW, ".field-error")
    focused = page.evaluate(
        """() => { const f = document.activeElement, e = document.querySelector('.field-error');
          return {describedBy: f.getAttribute('aria-describedby'), errorId: e.id,
                  gap: Math.abs(f.getBoundingClientRect().top - e.getBoundingClientRect().top),
                  field: f.name}; }"""
    )
    assert focused["describedBy"] == focused["errorId"] == "screen-error"
    assert focused["gap"] < 200 and focused["field"] == "helpfulness"  # the first unscored
    assert page.locator(".banner.bad").count() == 0  # not at the top of the page
    assert not Review.objects.filter(item=first).exists()


def test_a_key_that_does_not_apply_says_so(browser_page, annotator):
    page, _ = open_first(browser_page, annotator, count=1, kind="needs_answer")
    assert "Rate the answer you write" in page.locator("#review-form h2").first.inner_text()
    page.keyboard.press("a")  # nothing to approve before an answer is written
    hint = page.locator("#key-hint")
    hint.filter(has_text="does not apply").wait_for()
    assert page.evaluate(IN_VIEW, "#key-hint")
    assert not Review.objects.exists()


def test_without_javascript_a_refused_submit_leaves_a_url_that_reopens_the_item(
    browser_page, annotator, live_server
):
    """The plain form posts to the submit URL and the refusal is shown there: asking for
    that URL again (reload from the address bar, Back from elsewhere) reopens the item."""
    (item,) = make_items(1)
    page = browser_page(annotator, java_script_enabled=False)
    page.goto(f"{live_server.url}/review/")
    page.click("form.start button")
    page.wait_for_url(f"**/review/items/{item.pk}/")
    page.click("#review-form button[value=approve]")  # nothing rated: refused
    page.locator("#screen-error").wait_for()
    refused_at = page.url

    again = page.goto(refused_at)

    assert refused_at == f"{live_server.url}/review/items/{item.pk}/submit/"
    assert again.status == 200
    assert page.url == f"{live_server.url}/review/items/{item.pk}/"
    assert page.locator("#review-screen h1", has_text=f"Item #{item.pk}").is_visible()
    assert not Review.objects.exists()
