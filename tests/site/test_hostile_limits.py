"""/api/ refuses an over-long URL or oversized headers with JSON, below gunicorn's limits
whose answers are HTML (issue 18, row 9)."""

import pytest

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
