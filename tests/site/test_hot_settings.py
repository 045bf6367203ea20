"""hot_settings reads what django.conf.settings reads, and follows a test's changes."""

from django.conf import settings as django_settings
from django.test import override_settings

from flywheel_site.hot_settings import hot_settings


def test_it_reads_the_settings():
    assert hot_settings.FLYWHEEL_TEXT_MAX_CHARS == django_settings.FLYWHEEL_TEXT_MAX_CHARS


def test_it_follows_override_settings_and_returns_after():
    before = hot_settings.FLYWHEEL_TEXT_MAX_CHARS
    with override_settings(FLYWHEEL_TEXT_MAX_CHARS=before + 7):
        changed = hot_settings.FLYWHEEL_TEXT_MAX_CHARS
    assert (changed, hot_settings.FLYWHEEL_TEXT_MAX_CHARS) == (before + 7, before)


def test_it_follows_the_settings_fixture(settings):
    assert hot_settings.FLYWHEEL_METADATA_MAX_BYTES != 12  # read, and kept, before the change
    settings.FLYWHEEL_METADATA_MAX_BYTES = 12
    assert hot_settings.FLYWHEEL_METADATA_MAX_BYTES == 12
