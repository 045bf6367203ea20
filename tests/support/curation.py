"""Builders for curation tests: interactions with feedback, written through
the real ingest service so rows look exactly as production makes them."""

from django.db import connection

from curation import filters, policies
from curation.models import Candidate, CurationPolicy, Interaction, Source
from curation.services import batch_ingest
from tests.support import factories

GOOD_ANSWER = (
    "Open Settings and choose Security, then select Reset password. We send a link to the "
    "address on your account; it stays valid for thirty minutes, so check the spam folder too."
)
GOOD_EDIT = (
    "Go to Settings, open the Security tab and press Reset password. A reset link goes to the "
    "email on your account and works for thirty minutes; if it is missing, look in spam first."
)


def source() -> Source:
    return Source.objects.get_or_create(name="tests")[0]


def ingest(*, interactions=(), feedback=(), edits=()) -> dict:
    result = batch_ingest(
        source=source(), interactions=list(interactions), feedback=list(feedback), edits=list(edits)
    )
    assert result["rejected"] == 0, result
    return result


def edited(event_id: str, *, response=GOOD_ANSWER, final=GOOD_EDIT, **overrides) -> Interaction:
    ingest(
        interactions=[factories.interaction(event_id, response=response, **overrides)],
        feedback=[factories.feedback(event_id, f"{event_id}-fb", kind="edited", final_text=final)],
    )
    return Interaction.objects.get(event_id=event_id)


def with_feedback(event_id: str, kind: str, **overrides) -> Interaction:
    extra = {"value": 5} if kind == "rating" else {}
    ingest(
        interactions=[factories.interaction(event_id, response=GOOD_ANSWER, **overrides)],
        feedback=[factories.feedback(event_id, f"{event_id}-fb", kind=kind, **extra)],
    )
    return Interaction.objects.get(event_id=event_id)


def no_toxicity(**changes) -> CurationPolicy:
    """A policy without the toxicity model, for tests about everything else."""
    enabled = [n for n in filters.FILTER_ORDER if n != filters.TOXICITY]
    return policies.policy_create(changes={"enabled_filters": enabled, **changes})


def edits(n: int, prefix: str = "j") -> list[Interaction]:
    """`n` interactions, each with an edit that makes a preference candidate."""
    ingest(
        interactions=[
            factories.interaction(f"{prefix}{i}", response=f"{GOOD_ANSWER} Case {i}.")
            for i in range(n)
        ],
        feedback=[
            factories.feedback(
                f"{prefix}{i}", f"{prefix}{i}-e", kind="edited", final_text=f"{GOOD_EDIT} Case {i}."
            )
            for i in range(n)
        ],
    )
    return list(Interaction.objects.filter(event_id__startswith=prefix).order_by("pk"))


def make_candidates(
    n: int,
    *,
    task_type: str = "support",
    model: str = "m1",
    kind: str = "preference",
    failed_filter: str = "",
) -> list[Candidate]:
    """``n`` curated candidates on short texts: passed, or failed by ``failed_filter``."""
    from django.utils import timezone

    now = timezone.now()
    start = Interaction.objects.count()
    src = source()
    interactions = Interaction.objects.bulk_create(
        [
            Interaction(
                source=src,
                event_id=f"s-{failed_filter or 'passed'}-{task_type}-{model}-{start + i}",
                occurred_at=now,
                received_at=now,
                messages=[{"role": "user", "content": "q"}],
                response="a",
                task_type=task_type,
                model=model,
                curation_state="done",
            )
            for i in range(n)
        ]
    )
    verdict = (
        {"status": "failed", "failed_filter": failed_filter,
         "status_reason": f"rejected by {failed_filter}"}
        if failed_filter
        else {"status": "passed"}
    )  # fmt: skip
    return Candidate.objects.bulk_create(
        [
            Candidate(
                interaction=i,
                kind=kind,
                prompt=i.messages,
                chosen="c" if kind != "needs_answer" else None,
                rejected="r" if kind == "preference" else None,
                task_type=task_type,
                model=model,
                exact_key=str(i.pk),
                **verdict,
            )
            for i in interactions
        ]
    )


def rollup_sums(table: str) -> dict[tuple, int]:
    """A daily rollup's nonzero counts, by (day, source, task type, model, metric, key),
    whatever shards they were written to: what a rebuild must reproduce."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT day, source_id, task_type, model, metric, key, sum(n) FROM {table} "  # noqa: S608
            "GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(n) <> 0"
        )
        return {tuple(row[:6]): row[6] for row in cursor.fetchall()}
