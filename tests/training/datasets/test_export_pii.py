"""Every export is scanned for PII before a file is written or served, with the detector
ingest uses; PII fails the export closed, naming file, row and kind, never the text."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from tests.support import training as th
from training.datasets import export, services
from training.datasets.pii_scan import ExportPiiFound
from training.models import Membership

pytestmark = pytest.mark.django_db

LEAK = "Call me at 415-555-0134 or mail jane.doe@example.com"


def version_with_a_leak(admin):
    """One pair, its chosen text edited by a reviewer to hold a phone number and an email."""
    dataset = services.dataset_create(
        name="support", user=admin, lag_days=0, formats=["dpo_standard", "sft_conversational"]
    )
    th.approved(chosen=LEAK, occurred_at=timezone.now() - timedelta(days=1))
    version, _ = services.dataset_version_freeze(dataset=dataset, user=admin)
    split = Membership.objects.get(version=version).split
    return version, f"{split}.jsonl"


def test_an_export_holding_pii_fails_closed_naming_file_row_and_kind(admin, tmp_path):
    version, file_name = version_with_a_leak(admin)
    with pytest.raises(ExportPiiFound) as caught:
        export.dataset_version_write(version=version, directory=tmp_path)
    message = str(caught.value)
    # Every file the row would have gone to is named (JSONL, Parquet and the other shapes).
    named = message.removeprefix("Export refused: ").split(" row 1 holds PII")[0].split(", ")
    assert {f"dpo_standard/{file_name}", f"sft_conversational/{file_name}"} <= set(named)
    assert "(email, phone)" in message
    assert "415" not in message and "example.com" not in message
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_a_download_of_an_export_holding_pii_is_refused_and_nothing_is_left(
    as_user, admin, export_dir
):
    _, file_name = version_with_a_leak(admin)
    response = as_user(admin).get(f"/datasets/support/v1/files/dpo_standard/{file_name}")
    assert response.status_code == 409
    body = response.content.decode()
    assert "row 1" in body and "phone" in body and LEAK not in body
    assert [p for p in export.export_root().rglob("*") if p.is_file()] == []


def test_the_export_command_reports_the_refusal(admin, tmp_path):
    version_with_a_leak(admin)
    with pytest.raises(CommandError, match=r"holds PII \(email, phone\)"):
        call_command("export_dataset", "support", "1", str(tmp_path), "--no-progress")


def test_a_clean_version_exports_as_before(admin, tmp_path):
    version = th.frozen_version(admin)
    files = export.dataset_version_write(version=version, directory=tmp_path)
    assert all((tmp_path / name).is_file() for name in files)
