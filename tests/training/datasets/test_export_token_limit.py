"""An export token can be limited to named datasets (create_export_token --datasets). A token
without a limit exports every dataset, as before; a limited one gets a JSON 403 for any other
dataset, existing or not, so it learns nothing about them."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from curation.models import ApiToken
from curation.services import api_token_create
from tests.support import training as th
from tests.support.api import ApiClient
from training.datasets import services
from training.models import ExportTokenDataset

pytestmark = pytest.mark.django_db


def manifest(name: str) -> str:
    return f"/api/v1/datasets/{name}/versions/1/manifest.json"


@pytest.fixture
def two_datasets(admin):
    """`support` and `billing`, each with a frozen v1 (the same gold feeds both)."""
    for _ in range(4):
        th.approved(occurred_at=timezone.now() - timedelta(days=30))
    for name in ("support", "billing"):
        dataset = services.dataset_create(name=name, user=admin, eval_fraction=0.25)
        services.dataset_version_freeze(dataset=dataset, user=admin)


def create(*args) -> ApiClient:
    out = StringIO()
    call_command("create_export_token", *args, stdout=out, stderr=StringIO())
    return ApiClient(out.getvalue().strip())


def test_a_limited_token_exports_its_dataset_and_is_refused_the_others(two_datasets):
    api = create("trainer", "support-only", "--datasets", "support")
    assert api.get(manifest("support")).status_code == 200
    for name in ("billing", "no-such-dataset"):
        response = api.get(manifest(name))
        assert response.status_code == 403
        assert response.json() == {
            "error": "forbidden",
            "message": "this token may export only the datasets: support",
            "errors": [],
        }


def test_a_token_limited_to_several_datasets_exports_each(two_datasets):
    api = create("trainer", "both", "--datasets", "support, billing")
    assert api.get(manifest("support")).status_code == 200
    assert api.get(manifest("billing")).status_code == 200


def test_a_token_without_a_limit_exports_every_dataset(two_datasets):
    unlimited = create("trainer", "all")
    assert unlimited.get(manifest("support")).status_code == 200
    assert unlimited.get(manifest("billing")).status_code == 200
    # Tokens made before limits existed (curation's command) behave the same.
    _, raw = api_token_create(source_name="trainer", name="old", scopes=["export"])
    assert ApiClient(raw).get(manifest("billing")).status_code == 200
    assert unlimited.get(manifest("no-such-dataset")).status_code == 404


def test_an_unknown_dataset_name_creates_no_token(two_datasets):
    with pytest.raises(CommandError, match="No dataset named nope; datasets: billing, support"):
        create("trainer", "typo", "--datasets", "support,nope")
    assert not ApiToken.objects.filter(name="typo").exists()
    assert not ExportTokenDataset.objects.exists()


def test_a_limited_token_is_export_scoped_only(two_datasets):
    create("trainer", "support-only", "--datasets", "support")
    token = ApiToken.objects.get(name="support-only")
    assert token.scopes == ["export"]
    assert [row.dataset.name for row in ExportTokenDataset.objects.filter(token=token)] == [
        "support"
    ]


def test_a_dataset_a_token_is_limited_to_cannot_be_deleted_silently(two_datasets):
    """Deleting the last limit row would widen the token to every dataset."""
    from django.db.models import ProtectedError

    create("trainer", "support-only", "--datasets", "support")
    with pytest.raises(ProtectedError):
        ExportTokenDataset.objects.get().dataset.delete()
