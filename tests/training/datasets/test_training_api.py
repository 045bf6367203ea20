"""GET /api/v1/datasets/<name>/versions/<n>/<file>: export-scoped tokens only, streamed files
whose bytes are the ones the manifest records."""

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from curation.services import api_token_create, api_token_revoke
from curation.tokens import MISSING_SCOPE
from tests.support import training as th
from tests.support.api import ApiClient
from training.datasets import services
from training.datasets.api import NO_FILE, NOT_FOUND

pytestmark = pytest.mark.django_db

BASE = "/api/v1/datasets/support/versions/1"


@pytest.fixture
def version(admin):
    dataset = services.dataset_create(name="support", user=admin, eval_fraction=0.2)
    for _ in range(8):
        th.approved(occurred_at=timezone.now() - timedelta(days=30))
    return services.dataset_version_freeze(dataset=dataset, user=admin)[0]


@pytest.fixture
def exporter():
    token, raw = api_token_create(source_name="trainer", name="ci", scopes=["export"])
    return token, ApiClient(raw)


def body(response) -> bytes:
    return b"".join(response.streaming_content)


@pytest.mark.parametrize(
    "file", ["manifest.json", "dpo_standard/train.jsonl", "dpo_conversational/eval.jsonl"]
)
def test_an_export_token_downloads_the_files_of_a_frozen_version(version, exporter, file):
    _, api = exporter
    response = api.get(f"{BASE}/{file}")
    assert response.status_code == 200
    assert response.streaming
    digest = hashlib.sha256(body(response)).hexdigest()
    expected = (
        version.manifest_sha256
        if file == "manifest.json"
        else version.manifest["files"][file]["sha256"]
    )
    assert digest == expected
    assert response["X-Manifest-SHA256"] == version.manifest_sha256


def test_an_ingest_token_is_refused_naming_the_scope_it_lacks(version, ingest_token):
    _, raw = ingest_token
    response = ApiClient(raw).get(f"{BASE}/manifest.json")
    assert response.status_code == 403
    assert response.json()["message"] == MISSING_SCOPE.format(scope="export")


def test_no_token_and_a_revoked_token_are_refused(version, exporter):
    token, api = exporter
    assert api.get(f"{BASE}/manifest.json", token=None).status_code == 401
    api_token_revoke(token=token)
    assert api.get(f"{BASE}/manifest.json").status_code == 401


def test_a_session_login_is_not_enough_for_the_api(version, as_user, admin):
    response = as_user(admin).get(f"{BASE}/manifest.json")
    assert response.status_code == 401


def test_an_unknown_version_is_a_named_404(version, exporter):
    _, api = exporter
    response = api.get("/api/v1/datasets/support/versions/7/manifest.json")
    assert response.status_code == 404
    assert response.json()["message"] == NOT_FOUND.format(number=7, name="support")


def test_an_unknown_file_lists_the_versions_files(version, exporter):
    _, api = exporter
    response = api.get(f"{BASE}/../../settings.py")
    assert response.status_code == 404
    response = api.get(f"{BASE}/sft_conversational/train.jsonl")
    assert response.status_code == 404
    assert response.json()["message"] == NO_FILE.format(
        number=1,
        name="support",
        file="sft_conversational/train.jsonl",
        files="dpo_standard/train.jsonl, dpo_standard/eval.jsonl, "
        "dpo_standard/train.parquet, dpo_standard/eval.parquet, "
        "dpo_conversational/train.jsonl, dpo_conversational/eval.jsonl, "
        "dpo_conversational/train.parquet, dpo_conversational/eval.parquet, "
        "openai_sft/train.jsonl, openai_sft/eval.jsonl, "
        "openai_preference/train.jsonl, openai_preference/eval.jsonl, "
        "README.md, croissant.json, manifest.json",
    )
