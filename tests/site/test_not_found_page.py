"""A page that does not exist answers the site's styled 404, as the 403 does: the layout,
the path asked for and a way back, never Django's bare page."""

import pytest


@pytest.mark.django_db
def test_a_missing_page_answers_the_styled_404(as_user, curator):
    response = as_user(curator).get("/curation/no-such-page/")

    assert response.status_code == 404
    page = response.content.decode()
    assert "<h1>Not found</h1>" in page and "<code>/curation/no-such-page/</code>" in page
    assert "flywheel.css" in page  # the site's layout
    assert '<a href="/">Back to the start page</a>' in page
