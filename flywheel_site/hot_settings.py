"""Settings read for every string or event ingested, read as plain attributes.

`django.conf.settings` answers every read through LazyObject.__getattribute__, about
0.4 us each: ingest reads a limit for each text it validates, about 3,600 reads (1.5 ms
of CPU) per 500-event batch. `hot_settings` holds the same values on a plain object and
forgets one when a test changes it: override_settings and pytest-django's `settings`
fixture send `setting_changed`. Settings never change in a running server."""

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver


class _HotSettings:
    def __getattr__(self, name: str):
        # Called only for a name not read yet (or forgotten since): later reads find it
        # in the instance's dict.
        value = getattr(settings, name)
        self.__dict__[name] = value
        return value


hot_settings = _HotSettings()


@receiver(setting_changed)
def _forget(*, setting: str, **kwargs) -> None:
    hot_settings.__dict__.pop(setting, None)
