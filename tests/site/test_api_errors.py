"""Every /api/ error is JSON with a stable `error` code, whatever produced it, and a client
sees the answer: an over-limit body gets its 413 even from Python's urllib, the database being
down is a 503 with Retry-After, and an unexpected failure is a 500 without a traceback."""

import json
import socket
import urllib.error
import urllib.request

import pytest
from django.db import connections
from django.test import Client

from curation import services
from curation.services import api_token_create
from flywheel_site.api_errors import RETRY_AFTER_S
from tests.support import factories
from tests.support.api import ApiClient
from tests.support.gunicorn import gunicorn_served

INTERACTION = factories.interaction("evt-1")


def _assert_error(response, status: int, error: str):
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"] == error
    assert isinstance(body["message"], str) and body["message"]
    assert "Traceback" not in response.content.decode()
    return body


@pytest.fixture(params=[True, False], ids=["debug", "no-debug"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


@pytest.fixture
def gunicorn():
    with gunicorn_served(env={"FLYWHEEL_INGEST_MAX_BODY_BYTES": str(64 * 1024)}) as url:
        yield url


@pytest.mark.slow  # starts gunicorn
def test_an_over_limit_body_reaches_a_python_client_as_a_json_413(gunicorn):
    body = b"x" * (4 * 1024 * 1024)
    request = urllib.request.Request(  # noqa: S310 (our own test server)
        f"{gunicorn}/api/v1/interactions",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": "Bearer whatever"},
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=60)  # noqa: S310 (our own test server)
    assert raised.value.code == 413
    answer = json.loads(raised.value.read())
    assert answer["error"] == "too_large"
    assert "65536 bytes" in answer["message"]


@pytest.mark.django_db
def test_an_unknown_api_path_is_a_json_404(debug):
    response = Client().get("/api/v1/no-such-thing")
    _assert_error(response, 404, "not_found")


@pytest.mark.django_db
def test_a_wrong_method_is_a_json_405_that_names_the_allowed_ones(debug, api):
    response = api.get("/api/v1/interactions")
    _assert_error(response, 405, "method_not_allowed")
    assert "POST" in response["Allow"]


@pytest.mark.django_db
def test_a_refused_host_header_is_a_json_400(debug):
    response = Client().get("/api/v1/openapi.json", HTTP_HOST="evil.example")
    _assert_error(response, 400, "malformed")


@pytest.mark.django_db
def test_djangos_own_body_cap_is_a_json_413_not_a_500(debug, api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = api.post("/api/v1/interactions", factories.interaction("big", response="x" * 4000))
    _assert_error(response, 413, "too_large")


@pytest.mark.django_db
def test_an_unexpected_failure_is_a_json_500_without_a_traceback(debug, api, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(services, "interaction_ingest", broken)
    response = api.post("/api/v1/interactions", INTERACTION)
    _assert_error(response, 500, "internal")
    assert "secret internals" not in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_with_the_database_down_the_api_answers_a_json_503_with_retry_after(debug):
    _, raw = api_token_create(source_name="shop", name="ci", scopes=["ingest"])
    api = ApiClient(raw)
    connection = connections["default"]
    saved = dict(connection.settings_dict)
    # A port bound but never listening: every connection attempt is refused at once.
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        connection.close()
        connection.settings_dict.update(HOST="127.0.0.1", PORT=str(hole.getsockname()[1]))
        try:
            response = api.post("/api/v1/interactions", INTERACTION)
        finally:
            connection.close()
            connection.settings_dict.update(saved)
    body = _assert_error(response, 503, "unavailable")
    assert response["Retry-After"] == str(RETRY_AFTER_S)
    # Which service is down is for /healthz, not for API clients.
    assert "database" not in json.dumps(body).lower()
    assert "postgres" not in json.dumps(body).lower()
