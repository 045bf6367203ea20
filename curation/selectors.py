"""Reads for the curation pages. Everything here stays cheap on a table of
millions of candidates: keyset pagination, no COUNT over unfiltered tables
except through indexed GROUP BYs on small columns."""

from django.db.models import Count

from curation.models import Candidate, CurationPolicy, CurationRun, Interaction
from curation.toxicity import PROFANITY_CHECK_NAME, TOXICITY_FALLBACK_WARNING

HELD_WARNING = "{n} candidate(s) are held: the toxicity model could not be loaded."
PAGE_SIZE = 50
POLICY_VERSIONS_SHOWN = 50


def runs_page(*, before: int | None = None, size: int = PAGE_SIZE) -> list[CurationRun]:
    query = CurationRun.objects.order_by("-pk")
    if before:
        query = query.filter(pk__lt=before)
    return list(query[:size])


def failed_interactions(*, size: int = PAGE_SIZE) -> tuple[list[Interaction], int]:
    """Interactions whose curation raised, newest failure first, and how many
    there are (a partial index holds only these rows, so both stay cheap)."""
    query = Interaction.objects.filter(curation_state=Interaction.CurationState.FAILED)
    rows = list(
        query.select_related("source")
        .only(
            "pk",
            "event_id",
            "source__name",
            "curation_error",
            "curation_failed_at",
        )
        .order_by("-curation_failed_at", "-pk")[:size]
    )
    return rows, query.count()


def candidate_counts() -> dict:
    rows = Candidate.objects.values("status", "failed_filter").annotate(n=Count("pk"))
    by_status: dict[str, int] = {}
    by_filter: dict[str, int] = {}
    for row in rows:
        by_status[row["status"]] = by_status.get(row["status"], 0) + row["n"]
        if row["failed_filter"]:
            by_filter[row["failed_filter"]] = by_filter.get(row["failed_filter"], 0) + row["n"]
    return {"by_status": by_status, "by_filter": dict(sorted(by_filter.items()))}


def toxicity_warnings() -> list[str]:
    """What the UI and /healthz warn about: a fallback scorer deciding, or
    candidates held for want of a model."""
    warnings = []
    latest = (
        CurationRun.objects.exclude(scorer="")
        .order_by("-pk")
        .values_list("scorer", flat=True)
        .first()
    )
    if latest and latest.startswith(PROFANITY_CHECK_NAME):
        warnings.append(TOXICITY_FALLBACK_WARNING)
    held = Candidate.objects.filter(status=Candidate.Status.HELD).count()
    if held:
        warnings.append(HELD_WARNING.format(n=held))
    return warnings


def candidates_page(
    *,
    status: str = "",
    failed_filter: str = "",
    kind: str = "",
    before: int | None = None,
    size: int = PAGE_SIZE,
) -> list[Candidate]:
    query = (
        Candidate.objects.select_related("interaction")
        .defer("minhash", "lsh_bands", "prompt")
        .order_by("-pk")
    )
    if status:
        query = query.filter(status=status)
    if failed_filter:
        query = query.filter(failed_filter=failed_filter)
    if kind:
        query = query.filter(kind=kind)
    if before:
        query = query.filter(pk__lt=before)
    return list(query[:size])


def runs_overview() -> dict:
    """What the full runs page shows beside the runs: the HTMX poll skips it, as these
    are the counts over every candidate."""
    failed, failed_total = failed_interactions()
    return {
        "counts": candidate_counts(),
        "failed": failed,
        "failed_total": failed_total,
        "warnings": toxicity_warnings(),
    }


def interaction_exists(*, pk: int) -> bool:
    return Interaction.objects.filter(pk=pk).exists()


def candidate_with_decisions(*, pk: int) -> tuple[Candidate, list] | None:
    """A candidate and its decisions under every policy, newest policy first."""
    candidate = Candidate.objects.select_related("interaction", "policy").filter(pk=pk).first()
    if candidate is None:
        return None
    decisions = candidate.decisions.select_related("policy").order_by("-policy__version", "pk")
    return candidate, list(decisions)


def policy_versions(*, size: int = POLICY_VERSIONS_SHOWN) -> list[dict]:
    return list(
        CurationPolicy.objects.order_by("-version").values(
            "version", "created_at", "created_by__username", "note"
        )[:size]
    )


def policy_get(*, version: int) -> CurationPolicy | None:
    return CurationPolicy.objects.filter(version=version).first()
