"""The review guidelines: versioned text; saving makes the next version and old ones
stay readable."""

import pghistory
from django.db import IntegrityError, transaction
from django.db.models import Max

from flywheel_site.textcheck import CONTROL_REFUSED, has_control_characters
from review.errors import InvalidReview
from review.models import Guideline
from review.services import TEXT_TOO_LONG

GUIDELINE_EMPTY = "The guidelines cannot be empty."
GUIDELINE_CONFLICT = "Someone saved the guidelines at the same time; reload and try again."
GUIDELINE_MAX_CHARS = 100_000


def guideline_update(*, body: str, user, note: str = "") -> Guideline:
    """Save the guidelines as the next version; old versions stay readable."""
    body = body.replace("\r\n", "\n").strip()
    if not body:
        raise InvalidReview(GUIDELINE_EMPTY)
    if has_control_characters(body, note):
        raise InvalidReview(CONTROL_REFUSED)
    if len(body) > GUIDELINE_MAX_CHARS:
        raise InvalidReview(TEXT_TOO_LONG.format(limit=GUIDELINE_MAX_CHARS))
    try:
        with transaction.atomic(), pghistory.context(user=user.pk):
            latest = Guideline.objects.aggregate(v=Max("version"))["v"] or 0
            return Guideline.objects.create(
                version=latest + 1, body=body, note=note.strip()[:200], created_by=user
            )
    except IntegrityError:
        raise InvalidReview(GUIDELINE_CONFLICT) from None
