"""Schemathesis against the published schema (/api/v1/openapi.json), all checks
on, positive and negative data: no 5xx, every response as documented, every
request the schema calls valid accepted, every one it calls invalid refused.

The app is called in-process through its WSGI handler with a real token
(scopes ingest and export). Examples per operation are bounded so `make test`
stays quick; the generation is derandomised so a failure replays."""

from datetime import UTC, datetime

import pytest
import schemathesis
import time_machine
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings

from curation.schemas import earliest_occurred_at, latest_occurred_at
from curation.services import api_token_create

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
EXAMPLES = 40


@pytest.fixture(autouse=True)
def _in_test_transaction(db, settings):
    settings.FLYWHEEL_INGEST_RATE_LIMIT = 0
    # As Django's test client does: the handler's signals would close the test's
    # connection in the middle of its transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        with time_machine.travel(NOW, tick=False):
            yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


# An edit's texts, which must hold a letter or digit (the fields' description says so).
PLACEHOLDER_FIELDS = ("original_llm_output", "final_user_edit")


def _with_a_letter(text: str) -> str:
    # Its first character other than NUL becomes a letter: the length and any NUL stay, so a
    # case generated to break another rule still breaks it.
    for index, char in enumerate(text):
        if char != "\x00":
            return f"{text[:index]}a{text[index + 1 :]}"
    return text


def map_body(ctx, body):
    """The two rules JSON Schema cannot state, both in their fields' descriptions:
    `occurred_at` lies in a window that moves with the clock, and an edit's texts hold a
    letter or digit as `str.isalnum()` means it (a pattern's `\\w` is ASCII only in
    ECMA-262 and in schemathesis). Examples outside the window are moved to its start,
    and a text with no letter gets one, so the check that valid data is accepted stays
    strict for every other rule."""
    if ctx.operation is None or not isinstance(body, dict):
        return body
    items = [body] + [
        item
        for key in ("interactions", "feedback", "edits")
        if isinstance(body.get(key), list)
        for item in body[key]
    ]
    for item in items:
        for name in PLACEHOLDER_FIELDS:
            text = item.get(name) if isinstance(item, dict) else None
            if isinstance(text, str) and text and not any(char.isalnum() for char in text):
                item[name] = _with_a_letter(text)
        when = item.get("occurred_at") if isinstance(item, dict) else None
        if isinstance(when, str):
            try:
                parsed = datetime.fromisoformat(when.replace("Z", "+00:00"))
            except ValueError:
                continue
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            if not earliest_occurred_at() <= parsed <= latest_occurred_at():
                item["occurred_at"] = "2026-11-01T12:00:00Z"
    return body


# Read from the app itself, as a client would read it (no database needed).
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", WSGIHandler())
schema.hook(map_body)


@pytest.fixture
def token(db):
    _, raw = api_token_create(source_name="schemathesis", name="st", scopes=["ingest", "export"])
    return raw


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_keeps_the_promises_of_its_schema(case, token):
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"})


def test_the_schema_has_no_duplicate_keys_so_yaml_readers_accept_it(client):
    """JSON parsers keep the last of two equal keys; YAML readers (Swagger UI's js-yaml
    among them) refuse the document. Response codes given both as ``response=`` ints and
    as ``openapi_extra`` strings came out twice."""
    import json

    duplicated: list[str] = []

    def pairs(items):
        keys = [key for key, _ in items]
        duplicated.extend(sorted({key for key in keys if keys.count(key) > 1}))
        return dict(items)

    json.loads(client.get("/api/v1/openapi.json").content, object_pairs_hook=pairs)
    assert duplicated == []
