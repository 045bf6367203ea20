"""/api/ refuses an over-long URL or oversized headers with JSON, below gunicorn's limits
whose answers are HTML (issue 18, row 9)."""

import urllib.error
import urllib.request

import pytest

from tests.support.gunicorn import gunicorn_served

pytestmark = pytest.mark.django_db


def test_a_url_past_the_limit_is_a_json_414(api):
    answer = api.get("/api/v1/metrics?days=3&source=" + "s" * 2100)
    assert answer.status_code == 414
    assert answer["Content-Type"] == "application/json"
    assert answer.json() == {
        "error": "uri_too_long",
        "message": "request URL exceeds 2048 bytes",
        "errors": [],
    }


def test_a_long_path_is_a_json_414_too(api):
    answer = api.get("/api/v1/" + "a" * 2100)
    assert answer.status_code == 414 and answer.json()["error"] == "uri_too_long"


def test_headers_past_the_limit_are_a_json_431(api):
    answer = api.client.get("/api/v1/metrics", headers={f"X-Pad-{i}": "p" * 1000 for i in range(9)})
    assert answer.status_code == 431
    assert answer.json()["error"] == "headers_too_large"


def test_the_limits_are_settings(api, settings):
    settings.FLYWHEEL_API_MAX_URL_BYTES = 4000
    answer = api.get("/api/v1/metrics?days=3&source=" + "s" * 2100)
    # Within the raised limit the request goes on: this token has no metrics scope.
    assert answer.status_code == 403 and answer.json()["error"] == "forbidden"


def test_pages_outside_the_api_keep_django_s_own_handling(client):
    assert client.get("/login/?next=" + "a" * 3000).status_code == 200


@pytest.mark.slow  # starts gunicorn
def test_under_gunicorn_the_app_s_json_answers_come_first_and_name_no_server():
    """As `make run` serves it: a 3,000-byte URL (past the app's 2,048, below gunicorn's
    4,094-byte request line) and 9,000 bytes of headers get the app's JSON, and no answer
    names gunicorn."""
    answers = []
    with gunicorn_served() as base:
        for path, headers in [
            ("/api/v1/metrics?source=" + "s" * 3000, {}),
            ("/api/v1/metrics", {f"X-Pad-{i}": "p" * 1000 for i in range(9)}),
        ]:
            request = urllib.request.Request(base + path, headers=headers)  # noqa: S310
            with pytest.raises(urllib.error.HTTPError) as raised:
                urllib.request.urlopen(request, timeout=60)  # noqa: S310 (our own test server)
            answers.append(raised.value)
    assert [a.code for a in answers] == [414, 431]
    assert {a.headers["Content-Type"] for a in answers} == {"application/json"}
    assert [a.headers["Server"] for a in answers] == ["flywheel", "flywheel"]
