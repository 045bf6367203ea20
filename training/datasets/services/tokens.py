"""Export tokens limited to datasets. Kept on the training side: curation, which owns
tokens, knows nothing of datasets."""

from __future__ import annotations

from django.db import transaction

from curation.models import ApiToken, TokenScope
from curation.services import api_token_create
from training.datasets.models import (
    Dataset,
    ExportTokenDataset,
)
from training.errors import TrainingError

ERR_UNKNOWN_DATASETS = "No dataset named {names}; datasets: {known}."


def export_token_create(
    *, source_name: str, name: str, datasets: list[str]
) -> tuple[ApiToken, str]:
    """An export-scoped token, limited to `datasets` unless that is empty. Returns the row
    and the clear token (shown once). Unknown dataset names create nothing."""
    wanted = sorted(set(datasets))
    with transaction.atomic():
        found = list(Dataset.objects.filter(name__in=wanted).order_by("name"))
        missing = sorted(set(wanted) - {dataset.name for dataset in found})
        if missing:
            known = ", ".join(Dataset.objects.order_by("name").values_list("name", flat=True))
            raise TrainingError(
                ERR_UNKNOWN_DATASETS.format(names=", ".join(missing), known=known or "none")
            )
        token, raw = api_token_create(
            source_name=source_name, name=name, scopes=[TokenScope.EXPORT]
        )
        ExportTokenDataset.objects.bulk_create(
            ExportTokenDataset(token=token, dataset=dataset) for dataset in found
        )
    return token, raw
