from django.core.management.base import BaseCommand, CommandError

from flywheel_site.audit.erasure import user_erase
from flywheel_site.audit.services import AuditError


class Command(BaseCommand):
    help = (
        "Erase one end user's data (the raw user id the application sent; it is hashed as "
        "ingest hashes it and never stored). Frozen data is kept and quarantined."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("user_id")

    def handle(self, *args, user_id: str, **options) -> None:
        try:
            erasure = user_erase(raw_user_id=user_id)
        except AuditError as error:
            raise CommandError(str(error)) from None
        for name, count in erasure.counts.items():
            self.stdout.write(f"{name}: {count}")
        versions = ", ".join(f"#{pk}" for pk in erasure.quarantined_versions) or "none"
        self.stdout.write(f"dataset versions quarantined: {versions}")
        self.stdout.write(self.style.SUCCESS(f"Recorded as erasure #{erasure.pk}."))
