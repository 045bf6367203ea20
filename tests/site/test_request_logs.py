"""Request ids and JSON logs (issue 20 §4): the id a client sends (or one made for it) is
echoed, on every log line of the request, and on the jobs the request enqueued, which a
real RQ worker then runs and logs under it."""

import io
import json
import logging
import os
import subprocess
import sys

import django_rq
import pytest
from django.test import Client

from curation.services import api_token_create
from flywheel_site.logformat import JsonFormatter
from flywheel_site.request_context import REQUEST_ID_MAX, RequestContextFilter
from tests.support import ROOT, factories
from tests.support.curation import no_toxicity
from tests.support.jobs import run_jobs

FIELDS = {"time", "level", "logger", "message", "request_id", "actor"}


@pytest.fixture
def json_log():
    """Every record from here on, as the JSON lines FLYWHEEL_LOG_FORMAT=json writes."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestContextFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.mark.django_db
def test_a_clients_request_id_is_echoed_and_on_every_line_of_the_request(json_log, admin):
    client = Client()
    client.force_login(admin)
    response = client.get("/datasets/no-such/", headers={"X-Request-ID": "req-7f3a:edge/1"})
    assert response.status_code == 404
    assert response["X-Request-ID"] == "req-7f3a:edge/1"
    lines = [line for line in json_log() if line["request_id"] == "req-7f3a:edge/1"]
    assert lines, json_log()
    not_found = next(line for line in lines if line["logger"] == "django.request")
    assert set(not_found) == FIELDS
    assert not_found["level"] == "WARNING"
    assert not_found["message"] == "Not Found: /datasets/no-such/"
    assert not_found["actor"] == f"user:{admin.pk}"
    assert not_found["time"].endswith("+00:00")


@pytest.mark.parametrize(
    "sent",
    ["", "has space", "x" * (REQUEST_ID_MAX + 1), "tab\there", "naïve", "line\r\nbreak"],
    ids=["empty", "space", "too-long", "control", "non-ascii", "crlf"],
)
def test_an_unusable_request_id_is_replaced_by_a_new_one(sent):
    response = Client().get("/healthz", headers={"X-Request-ID": sent})
    echoed = response["X-Request-ID"]
    assert echoed != sent
    assert len(echoed) == 32 and int(echoed, 16) >= 0


def test_without_a_request_id_each_request_gets_its_own():
    first, second = (Client().get("/healthz")["X-Request-ID"] for _ in range(2))
    assert first != second


@pytest.mark.django_db
def test_an_api_requests_actor_is_its_token(json_log):
    token, raw = api_token_create(source_name="shop", name="ci", scopes=["ingest"])
    response = Client().post(
        "/api/v1/interactions",
        "{}",
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}", "X-Request-ID": "api-1"},
    )
    assert response.status_code == 422
    refused = [line for line in json_log() if line["request_id"] == "api-1"]
    assert refused and {line["actor"] for line in refused} == {f"token:{token.pk}"}


@pytest.mark.django_db(transaction=True)
def test_the_jobs_a_request_enqueued_carry_its_id_and_the_worker_logs_under_it(json_log):
    no_toxicity()
    _, raw = api_token_create(source_name="shop", name="ci", scopes=["ingest"])
    response = Client().post(
        "/api/v1/edits",
        json.dumps(factories.edit()),
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}", "X-Request-ID": "edit-42"},
    )
    assert response.status_code == 201, response.content
    (job,) = django_rq.get_queue("curation").get_jobs()
    assert job.meta["request_id"] == "edit-42"
    run_jobs("curation")
    worker = [line for line in json_log() if line["logger"] == "flywheel.jobs"]
    assert [line["request_id"] for line in worker] == ["edit-42", "edit-42"]
    assert worker[0]["message"].startswith(f"job {job.id} started: curation.jobs.")
    assert worker[1]["message"] == f"job {job.id} finished"
    # The worker's own lines after the job carry no stale id.
    after = json_log()[json_log().index(worker[1]) + 1 :]
    assert after and all(line["request_id"] is None for line in after)


@pytest.mark.slow
def test_log_format_json_writes_one_object_per_line_from_the_settings():
    """The real path: the setting read at start-up, Django's logging configured from it."""
    code = (
        "import logging; logging.getLogger('flywheel.check').warning('a \"quoted\"\\nline'); "
        "logging.getLogger('flywheel.check').info('second')"
    )
    env = {**os.environ, "FLYWHEEL_LOG_FORMAT": "json", "FLYWHEEL_LOG_LEVEL": "INFO"}
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    ours = [line for line in lines if line["logger"] == "flywheel.check"]
    assert [line["message"] for line in ours] == ['a "quoted"\nline', "second"]
    assert all(set(line) == FIELDS and line["request_id"] is None for line in ours)


def test_an_unknown_log_format_stops_start_up_with_the_variables_name():
    env = {**os.environ, "FLYWHEEL_LOG_FORMAT": "yaml"}
    done = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "FLYWHEEL_LOG_FORMAT must be one of text, json, got 'yaml'" in done.stderr
