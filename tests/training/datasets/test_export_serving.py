"""Any web node serves a frozen version's files: from its own complete export directory when it
has one, otherwise streamed from the database with the manifest's sha256 checked as it goes,
and never a whole file that differs from the manifest."""

import hashlib
import shutil
from datetime import timedelta

import pgtrigger
import pytest
from django.utils import timezone

from curation.services import api_token_create
from tests.support import training as th
from tests.support.api import ApiClient
from training.datasets import cards, export, serve, services
from training.models import GoldPair

pytestmark = pytest.mark.django_db


@pytest.fixture
def version(admin):
    dataset = services.dataset_create(
        name="support",
        user=admin,
        eval_fraction=0.2,
        formats=list(export.gold.FORMATS_BY_KIND["preference"]),
    )
    for _ in range(12):
        th.approved(occurred_at=timezone.now() - timedelta(days=30))
    return services.dataset_version_freeze(dataset=dataset, user=admin)[0]


def _fetch(client, url: str):
    response = client.get(url)
    assert response.status_code == 200, url
    return response, b"".join(response.streaming_content)


def test_with_the_export_directory_removed_every_file_still_matches_the_manifest(
    version, as_user, admin, export_dir, monkeypatch
):
    # Small chunks: the held-back last chunk and the chunk joins are exercised.
    monkeypatch.setattr(serve, "CHUNK_BYTES", 512)
    _, raw = api_token_create(source_name="trainer", name="ci", scopes=["export"])
    api, web = ApiClient(raw), as_user(admin)
    export.dataset_version_materialize(version=version)
    on_disk = {
        name: serve.dataset_version_download(version=version, name=name).origin
        for name in export.file_names(version)
    }
    assert set(on_disk.values()) == {"disk"}
    directory = export.version_dir(version)
    cards_on_disk = {
        name: hashlib.sha256((directory / name).read_bytes()).hexdigest()
        for name in cards.CARD_FILES
    }
    shutil.rmtree(export_dir)
    for name in export.file_names(version):
        expected = (
            version.manifest_sha256
            if name == export.MANIFEST_FILE
            else cards_on_disk[name]
            if name in cards.CARD_FILES
            else version.manifest["files"][name]["sha256"]
        )
        for client, url in (
            (api, f"/api/v1/datasets/support/versions/1/{name}"),
            (web, f"/datasets/support/v1/files/{name}"),
        ):
            response, body = _fetch(client, url)
            assert hashlib.sha256(body).hexdigest() == expected, url
            assert int(response["Content-Length"]) == len(body)
    assert serve.dataset_version_download(version=version, name=name).origin == "database"
    assert not export_dir.exists()  # served without writing anything to this node's disk


def test_a_file_whose_rows_changed_never_arrives_whole(version, monkeypatch):
    monkeypatch.setattr(serve, "CHUNK_BYTES", 256)
    name = "dpo_standard/train.jsonl"
    size = version.manifest["files"][name]["bytes"]
    with pgtrigger.ignore("training.GoldPair:gold_append_only"):
        GoldPair.objects.filter(memberships__version=version).update(chosen="tampered")
    download = serve.dataset_version_download(version=version, name=name)
    received = bytearray()
    with pytest.raises(export.ExportMismatch, match="does not match the manifest"):
        for chunk in download.chunks:
            received += chunk
    assert download.size == size
    assert len(received) < size  # the client sees a download cut short of Content-Length
