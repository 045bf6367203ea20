"""Builders for curation tests: interactions with feedback, written through
the real ingest service so rows look exactly as production makes them."""

from curation import filters, policies
from curation.models import CurationPolicy, Interaction, Source
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
