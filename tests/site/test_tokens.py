import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from curation import tokens
from curation.models import ApiToken, Source
from curation.models.sources import hash_token
from curation.services import (
    UNKNOWN_SCOPE,
    api_token_authenticate,
    api_token_create,
    api_token_revoke,
)
from flywheel_site import redis as fw_redis
from tests.support import factories
from tests.support.api import ApiClient

pytestmark = pytest.mark.django_db


def test_tokens_are_stored_only_as_a_hash():
    token, raw = api_token_create(source_name="app", name="t", scopes=["ingest"])
    token.refresh_from_db()
    assert raw.startswith("fw_")
    assert token.token_hash == hash_token(raw)
    assert raw not in str(ApiToken.objects.filter(pk=token.pk).values().get())
    assert token.hint == raw[:10]


def test_create_api_token_command_prints_the_token_once_and_creates_the_source():
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "create_api_token", "billing", "prod", "--scopes", "ingest,export", stdout=out, stderr=err
    )
    raw = out.getvalue().strip()
    token = ApiToken.objects.get(token_hash=hash_token(raw))
    assert token.source == Source.objects.get(name="billing")
    assert token.scopes == ["export", "ingest"]
    assert "shown once" in err.getvalue()


def test_create_api_token_refuses_unknown_scopes_and_repeated_names():
    with pytest.raises(CommandError, match="unknown scope 'admin'"):
        call_command("create_api_token", "s", "n", "--scopes", "admin", stdout=io.StringIO())
    assert UNKNOWN_SCOPE.startswith("unknown scope")
    call_command("create_api_token", "s", "n", stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(CommandError, match="already has a token named"):
        call_command("create_api_token", "s", "n", stdout=io.StringIO(), stderr=io.StringIO())


def test_a_revoked_token_is_refused_on_the_next_request():
    token, raw = api_token_create(source_name="app", name="t", scopes=["ingest"])
    client = ApiClient(raw)
    assert client.post("/api/v1/interactions", factories.interaction()).status_code == 201
    api_token_revoke(token=token)
    assert client.post("/api/v1/interactions", factories.interaction()).status_code == 401


def test_revoking_from_the_admin_takes_effect_at_once(admin_client):
    token, raw = api_token_create(source_name="app", name="t", scopes=["ingest"])
    response = admin_client.post(
        "/admin/curation/apitoken/",
        {"action": "revoke", "_selected_action": [token.pk]},
    )
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert ApiClient(raw).post("/api/v1/interactions", factories.interaction()).status_code == 401


def test_last_used_is_recorded_without_a_write_per_request():
    token, raw = api_token_create(source_name="app", name="t", scopes=["ingest"])
    client = ApiClient(raw)
    client.post("/api/v1/interactions", factories.interaction())
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None and first <= timezone.now()
    client.post("/api/v1/interactions", factories.interaction())
    token.refresh_from_db()
    assert token.last_used_at == first


def test_a_cached_token_costs_no_query_and_a_change_elsewhere_is_seen_at_once(
    django_assert_num_queries,
):
    token, raw = api_token_create(source_name="app", name="t", scopes=["ingest"])
    assert api_token_authenticate(raw=raw, scope="ingest") == token
    with django_assert_num_queries(0):
        assert api_token_authenticate(raw=raw, scope="ingest") == token
    # Another web process revokes it: its write and its new generation in Redis.
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    fw_redis.client().set(tokens.GENERATION_KEY, "set-by-another-process")
    assert api_token_authenticate(raw=raw, scope="ingest") is None
    assert ApiClient(raw).post("/api/v1/interactions", factories.interaction()).status_code == 401


def test_without_redis_every_request_reads_the_token_from_the_database(
    django_assert_num_queries,
):
    token, raw = api_token_create(source_name="app", name="t", scopes=["ingest"])
    assert api_token_authenticate(raw=raw, scope="ingest") == token  # cached, last use written
    fw_redis.mark_down(ConnectionError("redis is down in this test"))
    with django_assert_num_queries(1):
        assert api_token_authenticate(raw=raw, scope="ingest") == token
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    assert api_token_authenticate(raw=raw, scope="ingest") is None
