"""An export-scoped API token, optionally limited to named datasets. Lives in training, not
beside curation's create_api_token, because the limit refers to datasets and curation must not
depend on training."""

from django.core.management.base import BaseCommand, CommandError

from curation.management.commands.create_api_token import token_create_or_explain
from training.datasets.services import export_token_create
from training.errors import TrainingError


class Command(BaseCommand):
    help = (
        "Create an export token for SOURCE (created if new) and print it once; "
        "--datasets limits it to those datasets."
    )

    def add_arguments(self, parser):
        parser.add_argument("source")
        parser.add_argument("name")
        parser.add_argument(
            "--datasets",
            default="",
            help="comma-separated dataset names the token may export (default: every dataset)",
        )

    def handle(self, *args, source, name, datasets, **options):
        wanted = [d.strip() for d in datasets.split(",") if d.strip()]
        try:
            token, raw = token_create_or_explain(
                lambda: export_token_create(source_name=source, name=name, datasets=wanted),
                source=source,
                name=name,
            )
        except TrainingError as error:
            raise CommandError(error.message) from None
        limit = ", ".join(sorted(wanted)) if wanted else "every dataset"
        self.stderr.write(
            f"export token {token.name!r} for source {source!r}, limited to: {limit}; "
            "it is shown once, store it now:"
        )
        self.stdout.write(raw)
