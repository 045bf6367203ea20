"""Recompute the dashboard's daily rollups from the raw tables. Lives in training, the
app that may read every other, and calls each app's own rebuild."""

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from training.datasets.rollups import metrics_rebuild


class Command(BaseCommand):
    help = (
        "Recompute the daily rollups (curation, review, training) from the raw rows; "
        "--since YYYY-MM-DD recomputes only the days from that date on."
    )

    def add_arguments(self, parser):
        parser.add_argument("--since", default="", help="first day to recompute (YYYY-MM-DD)")

    def handle(self, *args, since, **options):
        try:
            first = date.fromisoformat(since) if since else None
        except ValueError:
            raise CommandError(f"--since must be a date YYYY-MM-DD, got {since!r}") from None
        rows = metrics_rebuild(since=first)
        scope = f"from {first}" if first else "all days"
        self.stdout.write(
            f"rebuilt the rollups ({scope}): "
            + ", ".join(f"{app} {n} rows" for app, n in rows.items())
        )
