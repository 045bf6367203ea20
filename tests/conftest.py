"""Shared fixtures: real PostgreSQL (pytest-django's test database) and the real
Redis named by REDIS_URL (`make test` points it at database 1)."""

import pytest
from django.test import Client

from flywheel_site import redis as fw_redis


@pytest.fixture(autouse=True)
def _clean_redis():
    """Each test starts with empty queues, no rate-limit counters, no breaker."""
    fw_redis.reset()
    client = fw_redis.client()
    keys = list(client.scan_iter("flywheel:*")) + list(client.scan_iter("rq:*"))
    if keys:
        client.delete(*keys)
    yield
    fw_redis.reset()


@pytest.fixture
def ingest_token(db):
    from curation.services import api_token_create

    token, raw = api_token_create(source_name="shop-assistant", name="ci", scopes=["ingest"])
    return token, raw


@pytest.fixture
def api(ingest_token):
    """A client that sends JSON with the ingest token."""
    _, raw = ingest_token
    return ApiClient(raw)


class ApiClient:
    def __init__(self, token: str | None):
        self.client = Client()
        self.token = token

    def post(self, path: str, data=None, *, raw: bytes | str | None = None, token=...):
        import json

        token = self.token if token is ... else token
        headers = {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        body = raw if raw is not None else json.dumps(data)
        return self.client.post(path, body, content_type="application/json", headers=headers)

    def get(self, path: str, *, token=...):
        token = self.token if token is ... else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.client.get(path, headers=headers)


# The tiny Detoxify model (real loading and inference path), built once per session.
from tests.tiny_detoxify import tiny_detoxify_fixture  # noqa: E402, F401


@pytest.fixture
def toxicity_model(settings, tiny_detoxify):
    """Point the curation settings at the tiny Detoxify checkpoint."""
    from curation.toxicity import reset_scorer_cache

    settings.FLYWHEEL_TOXICITY_CHECKPOINT = tiny_detoxify.checkpoint
    settings.FLYWHEEL_TOXICITY_CONFIG_DIR = tiny_detoxify.config_dir
    settings.FLYWHEEL_TOXICITY_ALLOW_FALLBACK = False
    reset_scorer_cache()
    yield tiny_detoxify
    reset_scorer_cache()


# --- personas -----------------------------------------------------------------

PASSWORD = "correct-horse-battery"


def _person(username: str, role: str | None):
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user(username=username, password=PASSWORD)
    if role:
        # Transactional tests flush every table, groups made by migrations included.
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


@pytest.fixture
def annotator(db):
    return _person("annie", "annotator")


@pytest.fixture
def annotator2(db):
    return _person("arthur", "annotator")


@pytest.fixture
def curator(db):
    return _person("carla", "curator")


@pytest.fixture
def admin(db):
    return _person("ada", "admin")


@pytest.fixture
def outsider(db):
    return _person("oscar", None)


@pytest.fixture
def as_user(client):
    """Log a persona in: `as_user(curator)` returns the logged-in client."""

    def login(user):
        client.force_login(user)
        return client

    return login


# --- training -----------------------------------------------------------------


@pytest.fixture
def export_dir(settings, tmp_path):
    """Dataset exports go to a per-test directory, never into .run/exports."""
    settings.FLYWHEEL_EXPORT_DIR = tmp_path / "exports"
    return settings.FLYWHEEL_EXPORT_DIR


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    # PBKDF2 is slow by design; tests create many users and hash no real secrets.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
