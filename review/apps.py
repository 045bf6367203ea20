from django.apps import AppConfig
from django.conf import settings


class ReviewConfig(AppConfig):
    name = "review"
    verbose_name = "Review"

    def ready(self) -> None:
        # A mix naming a kind that does not exist fails at start-up, not at
        # the first claim.
        from review import queues

        queues.check_mix(settings.FLYWHEEL_REVIEW_MIX)
