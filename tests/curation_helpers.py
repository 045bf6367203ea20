"""Builders for curation tests: interactions with feedback, written through
the real ingest service so rows look exactly as production makes them."""

from curation.models import Interaction, Source
from curation.services import batch_ingest
from tests import factories

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
