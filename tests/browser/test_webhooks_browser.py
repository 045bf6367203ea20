"""A refused webhook registration in a real Chromium (issue 22 §2): the browser stays on a
URL that answers GET, so reloading it from the address bar, or coming Back to it, shows the
page instead of a bare 405."""

from training.models import WebhookEndpoint


def test_a_refused_registration_leaves_the_browser_on_a_page_that_answers_get(
    browser_page, live_server, admin
):
    page = browser_page(admin)
    page.goto(f"{live_server.url}/webhooks/")
    page.fill("input[name=url]", "file:///etc/passwd")
    page.locator("input[name=event_types]").first.check()
    page.click("button:has-text('Register')")
    page.locator("form .error, form [role=alert]").first.wait_for()
    refused_at = page.url

    page.goto(f"{live_server.url}/")
    # Back to the refused form's page: from the page cache (None), or the browser sends the
    # refused POST again and gets the form with its error (400); never a bare 405.
    back = page.go_back()
    assert page.url == refused_at and (back is None or back.status in (200, 400))
    assert page.locator("h2", has_text="Register an endpoint").is_visible()
    again = page.goto(refused_at)  # what the address bar holds, asked for again

    assert refused_at == f"{live_server.url}/webhooks/"
    assert again.status == 200 and page.locator("h2", has_text="Register an endpoint").is_visible()
    assert not WebhookEndpoint.objects.exists()
