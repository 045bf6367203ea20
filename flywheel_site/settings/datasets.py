"""Datasets: where frozen versions are exported."""

from pathlib import Path

from flywheel_site.env import env_str
from flywheel_site.settings.base import BASE_DIR

# One directory per version.
FLYWHEEL_EXPORT_DIR = Path(env_str("FLYWHEEL_EXPORT_DIR", "") or BASE_DIR / ".run" / "exports")
