"""The candidates explorer in a real Chromium: a search that puts its state in
the URL, survives a reload, and a bulk reject on the filtered set after the
confirmation, checked in the database. Saves artifacts/candidates.png."""

from curation.models import Candidate, CandidateAction
from tests.support.browser import ARTIFACTS
from tests.support.explorer import candidate


def test_search_keeps_its_state_in_the_url_and_a_bulk_reject_acts_on_the_filtered_set(
    browser_page, live_server, curator
):
    invoices = [
        candidate(prompt=f"Why was my invoice {n} charged twice?", task_type="billing")
        for n in range(3)
    ]
    other_invoice = candidate(prompt="Send me the invoice again", task_type="support")
    unrelated = candidate(prompt="How do I change my avatar?", task_type="billing")

    page = browser_page(curator)
    page.click("nav >> text=Candidates")
    page.wait_for_url(f"{live_server.url}/curation/candidates/")
    assert page.inner_text("#count") == "5"

    page.fill("input[name=q]", "invoice")
    page.press("input[name=q]", "Enter")
    page.wait_for_url("**/curation/candidates/?q=invoice*")
    assert "q=invoice" in page.url
    page.wait_for_function("document.querySelector('#count').textContent === '4'")
    # Each row shows its prompt, the searched word marked (ts_headline).
    marks = page.locator("#list td.snippet mark").all_inner_texts()
    assert len(marks) >= 4 and {m.lower() for m in marks} == {"invoice"}
    page.select_option("select[name=task_type]", "billing")
    page.wait_for_url("**task_type=billing*")
    page.wait_for_function("document.querySelector('#count').textContent === '3'")

    page.reload()
    assert page.input_value("input[name=q]") == "invoice"
    assert page.input_value("select[name=task_type]") == "billing"
    assert page.inner_text("#count") == "3"
    shown = {int(t) for t in page.locator("#list tbody td:first-child a").all_inner_texts()}
    assert shown == {c.pk for c in invoices}
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "candidates.png"), full_page=True)

    page.click("#list >> text=Reject…")
    page.wait_for_url("**/curation/candidates/bulk/*")
    assert "This will act on 3 candidates" in page.inner_text("#confirm-count")
    page.fill("textarea[name=reason]", "duplicate billing complaints from a test tenant")
    page.click("button:has-text('Reject: 3 candidates')")
    page.wait_for_url("**/curation/actions/*/")
    assert page.inner_text("#action-status") == "succeeded"
    assert page.inner_text("#action-done") == "3/3"

    assert set(Candidate.objects.filter(status="failed").values_list("pk", flat=True)) == {
        c.pk for c in invoices
    }
    for untouched in (other_invoice, unrelated):
        assert Candidate.objects.get(pk=untouched.pk).status == "pending"
    action = CandidateAction.objects.get()
    assert (action.user.username, action.kind, action.total) == ("carla", "reject", 3)
    assert action.reason == "duplicate billing complaints from a test tenant"
    assert action.query == {"q": "invoice", "task_type": "billing"}


def test_an_invalid_filter_shows_its_error_in_place(browser_page, live_server, curator):
    """The explorer answers an invalid filter with 400 and the list partial that says
    why: base.html's htmx-config swaps it in (htmx drops 4xx answers by default)."""
    candidate(prompt="Why was my invoice charged twice?")

    page = browser_page(curator)
    page.goto(f"{live_server.url}/curation/candidates/")
    assert page.inner_text("#count") == "1"
    assert page.locator("#list [role=alert]").count() == 0

    with page.expect_response("**/curation/candidates/?*") as answer:
        page.fill("input[name=created_to]", "2026-01-01")
    assert answer.value.status == 200
    with page.expect_response("**/curation/candidates/?*") as answer:
        page.fill("input[name=created_from]", "2026-02-01")
    assert answer.value.status == 400
    alert = page.locator("#list [role=alert]")
    alert.wait_for()
    assert "The date range ends before it starts." in alert.inner_text()
    assert page.locator("#count").count() == 0
