from collections.abc import Callable

from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from curation.errors import CurationError
from curation.models import ApiToken
from curation.services import api_token_create


def token_create_or_explain(
    create: Callable[[], tuple[ApiToken, str]], *, source: str, name: str
) -> tuple[ApiToken, str]:
    """Run a token-creating service; its refusals become one-line command errors."""
    try:
        return create()
    except CurationError as error:
        raise CommandError(error.message) from None
    except IntegrityError as error:
        if "apitoken_unique_name" in str(error):
            raise CommandError(f"source {source!r} already has a token named {name!r}") from None
        raise


class Command(BaseCommand):
    help = "Create an API token for SOURCE (created if new) and print it once."

    def add_arguments(self, parser):
        parser.add_argument("source")
        parser.add_argument("name")
        parser.add_argument(
            "--scopes",
            default="ingest",
            help="comma-separated: ingest,export,route (default ingest)",
        )

    def handle(self, *args, source, name, scopes, **options):
        wanted = [s.strip() for s in scopes.split(",") if s.strip()]
        if not wanted:
            raise CommandError("--scopes needs at least one scope")
        token, raw = token_create_or_explain(
            lambda: api_token_create(source_name=source, name=name, scopes=wanted),
            source=source,
            name=name,
        )
        self.stderr.write(
            f"token {token.name!r} for source {source!r} with scopes {','.join(token.scopes)}; "
            "it is shown once, store it now:"
        )
        self.stdout.write(raw)
