"""Datasets: where frozen versions are exported."""

from pathlib import Path

from flywheel_site.env import env_str
from flywheel_site.settings.base import BASE_DIR

# One directory per version.
FLYWHEEL_EXPORT_DIR = Path(env_str("FLYWHEEL_EXPORT_DIR", "") or BASE_DIR / ".run" / "exports")

# The license written into every dataset card (the Hugging Face identifier, e.g. cc-by-4.0;
# "other" until the operator decides: the data are their users' conversations).
FLYWHEEL_DATASET_LICENSE = env_str("FLYWHEEL_DATASET_LICENSE", "other")
