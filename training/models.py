"""The models of the `training` app, defined in its sub-packages and re-exported here:
Django loads an app's models from `training.models`, and the migrations name
`training.models.default_formats`. The app label stays `training`, so the tables are
unchanged."""

from training.datasets.models import (
    Dataset,
    DatasetVersion,
    ExportFormat,
    ExportTokenDataset,
    GoldPair,
    Membership,
    PairKind,
    Quarantine,
    TrainingMetricDay,
    default_formats,
)
from training.registry.models import Experiment, ModelEvent, ModelVersion, MonitorAlert
from training.runs.models import TrainingRun
from training.webhooks.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)

__all__ = [
    "Dataset",
    "DatasetVersion",
    "Experiment",
    "ExportFormat",
    "ExportTokenDataset",
    "GoldPair",
    "Membership",
    "ModelEvent",
    "ModelVersion",
    "MonitorAlert",
    "PairKind",
    "Quarantine",
    "TrainingMetricDay",
    "TrainingRun",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
    "default_formats",
]
