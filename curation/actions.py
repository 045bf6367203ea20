"""Curators' actions on candidates from the explorer: re-curate under the
current policy, send to the review queue, reject; on one candidate or on
exactly a filtered set.

How the set stays exactly what the curator confirmed: the confirmation page
shows the count of `filter ∩ id <= max_id` (max_id: the newest candidate id
then). On execution the same filter and bound are resolved again, in one
statement that snapshots the ids into `CandidateActionItem`; if that count
differs from the confirmed one (rows changed status meanwhile), nothing is
done and the curator confirms again. Candidates inserted after confirmation
never enter (the id bound).

The work then goes through the snapshot in chunks, each in one transaction
that marks its items done, so a retried or repeated job does nothing twice
(`FOR UPDATE SKIP LOCKED` lets two workers share it without overlap). Small
sets run inside the request; larger ones as an RQ job whose status row the
page polls. Sending to the queue records a sampling decision and announces it
through `curation.hooks`, the same hand-over curation uses (curation knows
nothing of review)."""

import json
import logging
from collections.abc import Sequence

import pghistory
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from curation import hooks, selectors
from curation.errors import CurationError
from curation.forms import CURATOR_REJECTED
from curation.models import Candidate, CandidateAction, CandidateActionItem
from curation.pipeline import candidates_recurate
from curation.policies import policy_current
from curation.rollups import interactions_rollup_delta
from curation.sampling import stratum_of
from flywheel_site import redis as fw_redis

log = logging.getLogger(__name__)

ACTION_JOB = "curation.jobs.candidate_action_perform"
CHUNK = 500
SET_CHANGED = (
    "The set changed since you confirmed it: {expected} candidate(s) then, {actual} now. "
    "Nothing was done; look at the list and confirm again."
)
TOO_MANY = (
    "{n} candidates match; a bulk action takes at most {limit}. Narrow the filter and try again."
)
EMPTY = "No candidate matches: nothing to do."
NO_REASON = "Give a reason: it is recorded with the action."
REJECTED_BY = "Rejected by curator {user}: {reason}"

# Every id of the set in one INSERT ... SELECT: no round trip per candidate.
_SNAPSHOT = """
INSERT INTO curation_candidateactionitem (action_id, candidate_id)
SELECT %s, s.id FROM ({select}) AS s(id)
ON CONFLICT (action_id, candidate_id) DO NOTHING
"""


def candidate_action_create(
    *, user, kind: str, reason: str, filters: dict, max_id: int, expected: int
) -> CandidateAction:
    """Record the action and snapshot its set, then run it now (small set) or
    enqueue it after commit. Raises CurationError (409) when the set no longer
    has the confirmed count, and when it is empty or too large."""
    reason = (reason or "").strip()
    if not reason:
        raise CurationError(NO_REASON)
    if kind not in CandidateAction.Kind.values:
        raise CurationError(f"unknown action {kind!r}")
    limit = settings.FLYWHEEL_BULK_ACTION_MAX
    with transaction.atomic():
        action = CandidateAction.objects.create(
            kind=kind,
            user=user,
            reason=reason,
            query=json.loads(json.dumps(filters, default=str)),
            max_id=max_id,
        )
        ids = selectors.candidates_filtered(filters).filter(pk__lte=max_id).order_by()
        select, params = ids.values("pk").query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(_SNAPSHOT.format(select=select), [action.pk, *params])
            total = cursor.rowcount
        # Raising inside the block rolls the action row and its snapshot back.
        if total != expected:
            raise CurationError(SET_CHANGED.format(expected=expected, actual=total), status=409)
        if total == 0:
            raise CurationError(EMPTY)
        if total > limit:
            raise CurationError(TOO_MANY.format(n=total, limit=limit))
        action.total = total
        action.save(update_fields=["total"])
        if total > settings.FLYWHEEL_BULK_ACTION_INLINE:
            transaction.on_commit(lambda: candidate_action_enqueue(action_id=action.pk))
    if total <= settings.FLYWHEEL_BULK_ACTION_INLINE:
        candidate_action_perform(action_id=action.pk)
        action.refresh_from_db()
    return action


def candidate_action_enqueue(*, action_id: int) -> None:
    # If Redis is down the row stays queued and says so; the curator can see it.
    if not fw_redis.enqueue(
        "curation",
        ACTION_JOB,
        action_id,
        job_timeout=settings.FLYWHEEL_CURATION_JOB_TIMEOUT_S,
    ):
        CandidateAction.objects.filter(pk=action_id, status=CandidateAction.Status.QUEUED).update(
            error="could not be queued: Redis is unavailable"
        )


def candidate_action_perform(*, action_id: int, job_id: str = "") -> int:
    """Work through the action's undone items; returns how many this call did.
    Idempotent: done items are skipped, so a second run does nothing."""
    now = timezone.now()
    CandidateAction.objects.filter(
        pk=action_id, status__in=[CandidateAction.Status.QUEUED, CandidateAction.Status.RUNNING]
    ).update(status=CandidateAction.Status.RUNNING, started_at=now, **_job(job_id))
    action = CandidateAction.objects.select_related("user").get(pk=action_id)
    did = 0
    try:
        # A bulk action runs in a job on someone's behalf: its events name both.
        with pghistory.context(user=action.user_id, action=action.pk):
            while True:
                n = _chunk_perform(action)
                if not n:
                    break
                did += n
    except Exception as error:
        CandidateAction.objects.filter(pk=action_id).update(
            status=CandidateAction.Status.FAILED, error=repr(error), finished_at=timezone.now()
        )
        raise
    if not CandidateActionItem.objects.filter(action_id=action_id, done_at__isnull=True).exists():
        CandidateAction.objects.filter(pk=action_id).exclude(
            status=CandidateAction.Status.SUCCEEDED
        ).update(status=CandidateAction.Status.SUCCEEDED, error="", finished_at=timezone.now())
    return did


def _job(job_id: str) -> dict:
    return {"job_id": job_id} if job_id else {}


def _chunk_perform(action: CandidateAction) -> int:
    with transaction.atomic():
        items = list(
            CandidateActionItem.objects.filter(action=action, done_at__isnull=True)
            .order_by("candidate_id")
            .select_for_update(skip_locked=True)
            .values_list("pk", "candidate_id")[:CHUNK]
        )
        if not items:
            return 0
        ids = [candidate_id for _, candidate_id in items]
        _apply(action, ids)
        CandidateActionItem.objects.filter(pk__in=[pk for pk, _ in items]).update(
            done_at=timezone.now()
        )
        CandidateAction.objects.filter(pk=action.pk).update(done=F("done") + len(items))
    return len(items)


def _apply(action: CandidateAction, ids: Sequence[int]) -> None:
    if action.kind == CandidateAction.Kind.REJECT:
        chosen = Candidate.objects.filter(pk__in=ids)
        # The status and failed filter are rollup facts (passed/failed per day).
        with interactions_rollup_delta(
            interaction_ids=chosen.values_list("interaction_id", flat=True)
        ):
            chosen.update(
                status=Candidate.Status.FAILED,
                failed_filter=CURATOR_REJECTED,
                status_reason=REJECTED_BY.format(user=action.user.username, reason=action.reason),
                evaluated_at=timezone.now(),
            )
    elif action.kind == CandidateAction.Kind.RECURATE:
        candidates_recurate(policy=policy_current(), candidate_ids=ids)
    elif action.kind == CandidateAction.Kind.QUEUE:
        candidates_send_to_review(ids=ids, action=action)


# A curator's choice is a sampling decision with probability 1 and top
# priority; a candidate already sampled keeps its first decision.
_FORCE_SAMPLE = """
UPDATE curation_candidate AS c SET
    sampled_at = %s, sample_stratum = v.stratum, inclusion_probability = 1.0,
    priority = 1.0, priority_details = %s::jsonb
FROM unnest(%s::bigint[], %s::text[]) AS v(id, stratum)
WHERE c.id = v.id AND c.sampled_at IS NULL
"""


def candidates_send_to_review(*, ids: Sequence[int], action: CandidateAction) -> None:
    unsampled = Candidate.objects.filter(pk__in=ids, sampled_at__isnull=True).only(
        "pk", "task_type", "model"
    )
    strata = [(c.pk, stratum_of(c)) for c in unsampled]
    if strata:
        details = json.dumps({"sent_by": action.user.username, "action": action.pk})
        with connection.cursor() as cursor:
            cursor.execute(
                _FORCE_SAMPLE,
                [timezone.now(), details, [pk for pk, _ in strata], [s for _, s in strata]],
            )
    # Every id, not only the newly sampled: one sampled earlier whose item is
    # missing gets it now; the queue's own constraint ignores the rest.
    hooks.candidates_sampled(candidate_ids=ids)
