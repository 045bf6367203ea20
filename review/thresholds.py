"""A calibration suggestion applied: the filter's threshold becomes the next curation
policy version, written through curation's own policy service."""

import math

import pghistory

from curation.errors import CurationError
from curation.models import CurationPolicy
from curation.policies import policy_create, policy_current
from flywheel_site.textcheck import CONTROL_REFUSED, has_control_characters
from review.calibration import THRESHOLD_RULES
from review.errors import InvalidReview
from review.services import NOTE_MAX_CHARS, TEXT_TOO_LONG

CALIBRATION_REASON_REQUIRED = (
    "Say why the threshold changes: the reason is recorded with the new policy version."
)
CALIBRATION_NO_THRESHOLD = "This filter has no single threshold to set."
CALIBRATION_BAD_THRESHOLD = "The threshold must be a number."
INTEGER_MAX = 2**31 - 1
CALIBRATION_NOTE = "Calibration of {filter}: {field} {old} -> {new}. {reason}"


def policy_threshold_apply(
    *, filter_name: str, threshold: str | float, user, reason: str
) -> CurationPolicy:
    """Turn a calibration suggestion into the next policy version, through the
    curation policy service: `user` is its author and the note says why."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidReview(CALIBRATION_REASON_REQUIRED)
    if len(reason) > NOTE_MAX_CHARS:
        raise InvalidReview(TEXT_TOO_LONG.format(limit=NOTE_MAX_CHARS))
    if has_control_characters(reason):
        raise InvalidReview(CONTROL_REFUSED)
    rule = THRESHOLD_RULES.get(filter_name)
    if rule is None:
        raise InvalidReview(CALIBRATION_NO_THRESHOLD)
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise InvalidReview(CALIBRATION_BAD_THRESHOLD) from None
    if not math.isfinite(value):
        raise InvalidReview(CALIBRATION_BAD_THRESHOLD)
    if rule.integer:
        # The policy stores it in a PostgreSQL integer.
        if value < 0 or value != int(value) or value > INTEGER_MAX:
            raise InvalidReview(CALIBRATION_BAD_THRESHOLD)
        value = int(value)
    old = getattr(policy_current(), rule.field)
    note = CALIBRATION_NOTE.format(
        filter=filter_name, field=rule.field, old=old, new=value, reason=reason
    )
    try:
        with pghistory.context(user=user.pk, reason=reason):
            return policy_create(changes={rule.field: value}, user=user, note=note)
    except CurationError as error:
        raise InvalidReview(error.message) from None
