"""Reads for the curation pages. Everything here stays cheap on a table of
millions of candidates: keyset pagination, no COUNT over unfiltered tables
except through indexed GROUP BYs on small columns."""

import re
from datetime import date, datetime, time, timedelta

from django.contrib.postgres.search import SearchHeadline, SearchQuery
from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from curation.forms import SCORE_FIELDS
from curation.models import (
    Candidate,
    CandidateAction,
    CandidateDocument,
    CurationPolicy,
    CurationRun,
    Feedback,
    Interaction,
    Source,
)
from curation.toxicity import PROFANITY_CHECK_NAME, TOXICITY_FALLBACK_WARNING
from flywheel_site.keyset import PAGE_SIZE, KeysetPage

HELD_WARNING = "{n} candidate(s) are held: the toxicity model could not be loaded."
COUNT_CAP = 10_000
OPTIONS_LIMIT = 500
POLICY_VERSIONS_SHOWN = 50


def runs_page(*, before: int | None = None, size: int = PAGE_SIZE) -> KeysetPage:
    return KeysetPage.of(CurationRun.objects.all(), before=before, size=size)


def _run_did_nothing(run: CurationRun) -> bool:
    return run.status == CurationRun.Status.SUCCEEDED and not (
        run.interactions or run.candidates or run.errored
    )


def runs_collapsed(runs: list[CurationRun]) -> list[dict]:
    """The runs page's rows: consecutive runs that found nothing to do for the same reason
    (the sweeper's idle passes, ingest jobs whose interactions another run took) are one row
    with a count, so thirty idle passes do not bury the runs that curated something."""
    rows: list[dict] = []
    for run in runs:
        idle = _run_did_nothing(run)
        last = rows[-1] if rows else None
        if idle and last and last["idle"] and last["run"].explanation == run.explanation:
            rows[-1]["runs"].append(run)
        else:
            rows.append({"idle": idle, "run": run, "runs": [run]})
    for row in rows:
        row["count"], row["oldest"] = len(row["runs"]), row["runs"][-1]
    return rows


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


# Measured on 1,000,000 candidates (this 2-core machine, PostgreSQL 15, warm):
# a search page takes 24-28 ms whether the word is in 108 rows or in every row,
# its count 2-7 ms (158 ms for a word in every row, stopping at "10,000+"); the
# plan is a Bitmap Index Scan on candidate_search_gin (0.3 ms for the rare
# word). Keyset pages in the middle of the table: 24 ms either way; the select
# lists' loose index scan: 2.5 ms; a one-day created_at range counted: 10 ms.
# Building the GIN index on that table took 2 min 17 s (CONCURRENTLY in 0010).
def candidates_filtered(filters: dict) -> QuerySet[Candidate]:
    """Candidates matching the explorer's cleaned filter (see
    `CandidateSearchForm.filters`); every filter combines with the others."""
    query = Candidate.objects.all()
    if filters.get("pk"):
        query = query.filter(pk=filters["pk"])
    if filters.get("q"):
        # websearch syntax: "quoted phrase", or, -excluded; never a syntax error.
        words = SearchQuery(websearch_text(filters["q"]), config="english", search_type="websearch")
        query = query.alias(document=CandidateDocument()).filter(document=words)
    for name in ("status", "kind", "failed_filter", "task_type", "model"):
        if filters.get(name) not in (None, ""):
            query = query.filter(**{name: filters[name]})
    if filters.get("source"):
        query = query.filter(interaction__source_id=filters["source"])
    if filters.get("created_from"):
        query = query.filter(created_at__gte=_day_start(filters["created_from"]))
    if filters.get("created_to"):
        query = query.filter(created_at__lt=_day_start(filters["created_to"] + timedelta(days=1)))
    for name in SCORE_FIELDS:
        if filters.get(f"{name}_min") is not None:
            query = query.filter(**{f"{name}__gte": filters[f"{name}_min"]})
        if filters.get(f"{name}_max") is not None:
            query = query.filter(**{f"{name}__lte": filters[f"{name}_max"]})
    return query


# A term: any "-" (exclude), then a quoted phrase or a word.
_TERM = re.compile(r'(-*)("[^"]*"|[^\s"-][^\s"]*)')
SEARCH_MAX_TERMS = 32


def websearch_text(q: str) -> str:
    """The search box's text with what PostgreSQL's websearch parser cannot take apart
    removed: runs of "-" with no word between them nest NOTs until it fails ("tsquery stack
    too small"). Each term keeps at most one "-", a term without a letter or digit is
    dropped, and at most SEARCH_MAX_TERMS terms are kept, so the tsquery stays shallow."""
    terms = []
    for minus, term in _TERM.findall(q):
        if any(ch.isalnum() for ch in term):
            terms.append(("-" if minus else "") + term)
    return " ".join(terms[:SEARCH_MAX_TERMS])


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


# The words a row shows: the prompt's last message (what was asked), or with a search the
# fragment of prompt and answer around the words found. Marks are control characters, which
# no stored text may hold (flywheel_site.textcheck), so escaping the fragment and then turning
# them into <mark> cannot let stored text make markup.
_ASKED = RawSQL("jsonb_path_query_first(curation_candidate.prompt, '$[last].content') #>> '{}'", [])
_SEARCHED = RawSQL(
    "concat_ws(' \u2014 ', (SELECT string_agg(c #>> '{}', ' ') FROM "
    "jsonb_path_query(curation_candidate.prompt, '$[*].content') AS c), "
    "curation_candidate.chosen)",
    [],
)
_MARK_START, _MARK_STOP = "\x02", "\x03"
SNIPPET_CHARS = 160


def _snippet_html(text: str | None, *, searched: bool) -> SafeString:
    text = " ".join((text or "").split())
    if not searched and len(text) > SNIPPET_CHARS:
        text = text[: SNIPPET_CHARS - 1] + "\u2026"
    marked = escape(text).replace(_MARK_START, "<mark>").replace(_MARK_STOP, "</mark>")
    return mark_safe(marked)  # noqa: S308 (escaped above; only our marks are markup)


def candidates_page(
    *, filters: dict, before: int | None = None, after: int | None = None, size: int = PAGE_SIZE
) -> KeysetPage:
    """One page of the filtered candidates, newest first (see `KeysetPage`), each with the
    `snippet` of text its row shows."""
    query = (
        candidates_filtered(filters)
        .select_related("interaction__source")
        .defer("minhash", "lsh_bands", "prompt", "priority_details")
    )
    searched = bool(filters.get("q"))
    if searched:
        words = SearchQuery(websearch_text(filters["q"]), config="english", search_type="websearch")
        text = SearchHeadline(
            _SEARCHED, words, config="english", start_sel=_MARK_START, stop_sel=_MARK_STOP,
            max_words=24, min_words=10, max_fragments=2, fragment_delimiter=" \u2026 ",
        )  # fmt: skip
    else:
        text = _ASKED
    page = KeysetPage.of(query.annotate(snippet_text=text), before=before, after=after, size=size)
    for row in page.rows:
        row.snippet = _snippet_html(row.snippet_text, searched=searched)
    return page


def candidates_count(
    *, filters: dict, cap: int = COUNT_CAP, max_id: int | None = None
) -> tuple[int, bool]:
    """How many candidates match (with an id up to `max_id` if given), counted
    exactly up to `cap`; beyond it the answer is (cap, True), so a broad filter
    over millions of rows reads at most cap + 1 index entries."""
    query = candidates_filtered(filters)
    if max_id is not None:
        query = query.filter(pk__lte=max_id)
    n = query.order_by()[: cap + 1].count()
    return min(n, cap), n > cap


def candidates_max_id() -> int:
    return Candidate.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


# A loose index scan over candidate_stratum_idx (task_type, model, status): one
# index probe per distinct pair instead of reading every candidate.
_STRATA = """
WITH RECURSIVE pairs AS (
    (SELECT task_type, model FROM curation_candidate ORDER BY task_type, model LIMIT 1)
    UNION ALL
    SELECT n.task_type, n.model FROM pairs p CROSS JOIN LATERAL (
        SELECT c.task_type, c.model FROM curation_candidate c
        WHERE (c.task_type, c.model) > (p.task_type, p.model)
        ORDER BY c.task_type, c.model LIMIT 1
    ) n
)
SELECT task_type, model FROM pairs LIMIT %s
"""


def explorer_options(*, limit: int = OPTIONS_LIMIT) -> dict:
    """The choices of the explorer's select lists, from cheap sources: the
    (task type, model) pairs by a loose index scan, sources from their table."""
    with connection.cursor() as cursor:
        cursor.execute(_STRATA, [limit])
        pairs = cursor.fetchall()
    return {
        "task_types": sorted({t for t, _ in pairs if t}),
        "models": sorted({m for _, m in pairs if m}),
        "sources": list(Source.objects.order_by("name").values_list("pk", "name")[:limit]),
    }


def candidate_actions() -> QuerySet[CandidateAction]:
    return CandidateAction.objects.select_related("user")


def queue_action_outcome(*, action: CandidateAction) -> dict[str, int] | None:
    """What a finished "send to the review queue" did to its set: candidates it sampled
    (added to the queue), those sampled before it (already queued), and those still unsampled
    (refused). "done 33/33" alone read as 33 added when all 33 were already queued."""
    if action.kind != CandidateAction.Kind.QUEUE or action.status != action.Status.SUCCEEDED:
        return None
    counts = Candidate.objects.filter(actions__action=action).aggregate(
        total=Count("pk"),
        added=Count("pk", filter=Q(priority_details__action=action.pk)),
        refused=Count("pk", filter=Q(sampled_at__isnull=True)),
    )
    counts["already"] = counts["total"] - counts["added"] - counts["refused"]
    return counts


def candidate_actions_recent(*, candidate_id: int, size: int = 20) -> list[CandidateAction]:
    return list(
        CandidateAction.objects.filter(items__candidate_id=candidate_id)
        .select_related("user")
        .order_by("-pk")[:size]
    )


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


def candidates() -> QuerySet[Candidate]:
    """Candidates with what their page shows beside them (interaction, policy)."""
    return Candidate.objects.select_related("interaction", "policy")


def interactions() -> QuerySet[Interaction]:
    return Interaction.objects.all()


def candidate_decisions(candidate: Candidate) -> list:
    """A candidate's decisions under every policy, newest policy first."""
    return list(candidate.decisions.select_related("policy").order_by("-policy__version", "pk"))


def candidate_duplicate_of(decisions) -> int | None:
    """The earlier candidate a failed dedup decision names, if any."""
    for d in decisions:
        if not d.passed and isinstance(d.details, dict) and d.details.get("duplicate_of"):
            return int(d.details["duplicate_of"])
    return None


def candidate_feedback(*, candidate: Candidate) -> list[Feedback]:
    return list(
        Feedback.objects.filter(pk__in=candidate.feedback_ids).order_by("occurred_at", "pk")
    )


def policy_versions(*, size: int = POLICY_VERSIONS_SHOWN) -> list[dict]:
    return list(
        CurationPolicy.objects.order_by("-version").values(
            "version", "created_at", "created_by__username", "note"
        )[:size]
    )


def policies() -> QuerySet[CurationPolicy]:
    return CurationPolicy.objects.all()
