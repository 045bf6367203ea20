from django.apps import AppConfig


class CurationConfig(AppConfig):
    name = "curation"
    verbose_name = "Curation"

    def ready(self) -> None:
        # Curation owns the stored traffic, whose timestamps came from clients:
        # make every connection able to read any value PostgreSQL accepted.
        from flywheel_site import db

        db.install()
