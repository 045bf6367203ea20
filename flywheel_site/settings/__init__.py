"""Flywheel settings (DJANGO_SETTINGS_MODULE stays flywheel_site.settings)."""

from flywheel_site.settings.base import *  # noqa: F403
