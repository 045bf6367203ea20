"""Where traffic comes from: sources and their API tokens (hashed, scoped)."""

import hashlib
import secrets

import pghistory
from django.db import models


class TokenScope(models.TextChoices):
    INGEST = "ingest"
    EXPORT = "export"
    # GET /api/v1/route: which model serves a user (training.registry.route).
    ROUTE = "route"
    # Read the flywheel's figures (GET /api/v1/metrics); writes and exports nothing.
    METRICS = "metrics"
    # Read other sources' figures too: without it a token reads only its own source's.
    ALL_SOURCES = "all_sources"


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class Source(models.Model):
    """An application that produces traffic."""

    name = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


TOKEN_PREFIX = "fw_"  # noqa: S105 (a prefix, not a secret)


def hash_token(raw: str) -> str:
    # Tokens carry 256 bits of randomness, so a plain SHA-256 cannot be brute
    # forced; a slow KDF would only slow every request.
    return hashlib.sha256(raw.encode()).hexdigest()


def generate_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class ApiToken(models.Model):
    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="tokens")
    name = models.CharField(max_length=100)
    # First characters of the token, shown in the admin so people can tell tokens apart.
    hint = models.CharField(max_length=12, editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "name"], name="apitoken_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.source.name}/{self.name} ({self.hint}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes
