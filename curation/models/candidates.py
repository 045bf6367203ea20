"""Candidates, the filters' decisions and the sampling draws on them, curators' actions
on sets of candidates, and the LLM judge's cached verdicts."""

import pghistory
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import BrinIndex, GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import Q

from curation.models.interactions import Interaction
from curation.models.policies import CurationPolicy


class CandidateKind(models.TextChoices):
    PREFERENCE = "preference", "preference pair"
    SFT = "sft", "SFT (approved as is)"
    NEEDS_ANSWER = "needs_answer", "needs an answer"


class CandidateDocument(models.Func):
    """The words of a candidate for full-text search: the prompt's message
    contents, the chosen and the rejected answer, as one English tsvector.

    The GIN index `candidate_search_gin` is built on this very expression and
    queries filter on it, so PostgreSQL answers a search from the index without
    a stored column (no table rewrite, no second copy of every text). Every
    function here is immutable, which an index expression requires."""

    output_field = SearchVectorField()

    def __init__(self):
        super().__init__(models.F("prompt"), models.F("chosen"), models.F("rejected"))

    def as_sql(self, compiler, connection, **extra_context):
        (prompt, p1), (chosen, p2), (rejected, p3) = (
            compiler.compile(e) for e in self.get_source_expressions()
        )
        sql = (
            f"(jsonb_to_tsvector('english'::regconfig, "
            f"jsonb_path_query_array({prompt}, '$[*].content'::jsonpath), '[\"string\"]'::jsonb)"
            f" || to_tsvector('english'::regconfig, "
            f"COALESCE({chosen}, '') || ' ' || COALESCE({rejected}, '')))"
        )
        return sql, [*p1, *p2, *p3]


@pghistory.track(
    # Statuses and scores change on every evaluation and are recorded as
    # FilterDecisions; history keeps changes to the pair itself.
    pghistory.UpdateEvent(
        condition=pghistory.AnyChange("interaction", "kind", "prompt", "chosen", "rejected")
    ),
    pghistory.DeleteEvent(),
)
class Candidate(models.Model):
    """A would-be training example built from an interaction and its feedback."""

    class Status(models.TextChoices):
        PENDING = "pending"
        PASSED = "passed"
        FAILED = "failed"
        # The toxicity model could not be loaded and no fallback is allowed:
        # never passed unscored, re-evaluated when the model is back.
        HELD = "held"

    interaction = models.ForeignKey(
        Interaction, on_delete=models.PROTECT, related_name="candidates"
    )
    kind = models.CharField(max_length=12, choices=CandidateKind.choices)
    prompt = models.JSONField()
    chosen = models.TextField(null=True, blank=True)
    rejected = models.TextField(null=True, blank=True)
    feedback_ids = models.JSONField(default=list)
    feedback_kinds = models.JSONField(default=list)
    rating = models.SmallIntegerField(null=True, blank=True)
    task_type = models.CharField(max_length=100, blank=True, default="")
    model = models.CharField(max_length=200, blank=True, default="")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    status_reason = models.TextField(blank=True, default="")
    failed_filter = models.CharField(max_length=20, blank=True, default="")
    policy = models.ForeignKey(
        CurationPolicy, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Matched through the dedup listing (its first 8 bytes are a key there), never by an
    # index of its own: two random inserts per candidate that no query read.
    exact_key = models.CharField(max_length=64)
    minhash = models.BinaryField(null=True, blank=True)
    # LSH band hashes of the MinHash, so near-duplicate lookups are one indexed
    # query shared by every worker instead of an index held in one process.
    lsh_bands = ArrayField(models.BigIntegerField(), default=list, blank=True)
    char_similarity = models.FloatField(null=True, blank=True)
    word_similarity = models.FloatField(null=True, blank=True)
    toxicity = models.FloatField(null=True, blank=True)
    toxicity_scorer = models.CharField(max_length=100, blank=True, default="")
    quality = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    evaluated_at = models.DateTimeField(null=True, blank=True)
    # The sampling decision, recorded here by curation; the review app pulls
    # sampled candidates into its queue (curation knows nothing of review).
    # Set once: a later re-curation never re-draws a candidate already sampled.
    sampled_at = models.DateTimeField(null=True, blank=True)
    sample_stratum = models.CharField(max_length=310, blank=True, default="")
    # Probability this candidate had of being sampled, so statistics over
    # reviewed items can be weighted back to the whole population.
    inclusion_probability = models.FloatField(null=True, blank=True)
    priority = models.FloatField(null=True, blank=True)
    priority_details = models.JSONField(default=dict, blank=True)
    # Set when the candidate was sampled as an audit of a filter that rejected
    # it (the filter's name): the decision at sampling time, kept though a
    # later policy may decide otherwise.
    audit_filter = models.CharField(max_length=20, blank=True, default="", db_default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["interaction", "kind"], name="candidate_unique_kind"),
            models.CheckConstraint(
                condition=(Q(sampled_at__isnull=True) & Q(inclusion_probability__isnull=True))
                | (
                    Q(sampled_at__isnull=False)
                    & Q(inclusion_probability__gt=0)
                    & Q(inclusion_probability__lte=1)
                    & Q(priority__isnull=False)
                ),
                name="candidate_sample_complete",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=CandidateKind.values), name="candidate_valid_kind"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "passed", "failed", "held"]),
                name="candidate_valid_status",
            ),
            models.CheckConstraint(
                condition=~Q(kind="preference")
                | (Q(chosen__isnull=False) & Q(rejected__isnull=False)),
                name="candidate_preference_has_pair",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "kind"], name="candidate_status_idx"),
            # Sampling counts passed candidates per (task type, model) every chunk.
            models.Index(fields=["task_type", "model", "status"], name="candidate_stratum_idx"),
            # The explorer's full-text search (see CandidateDocument).
            GinIndex(CandidateDocument(), name="candidate_search_gin"),
            # Rows arrive in created_at order, so a BRIN index (a few pages for
            # millions of rows) lets a date range skip the rest of the table.
            BrinIndex(fields=["created_at"], name="candidate_created_brin"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"

    @property
    def ref(self) -> tuple[int, str]:
        """Names a candidate before it has an id: filters run before the insert."""
        return (self.interaction_id, self.kind)


class FilterDecision(models.Model):
    """Why a candidate passed or failed one filter under one policy version.
    Re-curation under a new version adds rows; old decisions stay."""

    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="decisions")
    policy = models.ForeignKey(CurationPolicy, on_delete=models.PROTECT, related_name="+")
    filter = models.CharField(max_length=20)
    passed = models.BooleanField()
    score = models.FloatField(null=True, blank=True)
    reason = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    scorer = models.CharField(max_length=100)
    scorer_version = models.CharField(max_length=100)
    # What ran the scorer's model (toxicity: "torch" or "onnx-int8", whose scores differ
    # slightly); empty for rule-based filters.
    runtime = models.CharField(max_length=20, blank=True, default="", db_default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["candidate", "policy", "filter"], name="decision_unique_per_policy"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.filter}: {'pass' if self.passed else 'fail'}"


class SampleDraw(models.Model):
    """A candidate inside one policy's sampling design: drawn for review (main sample or a
    filter's audit) with this inclusion probability under that policy's verdicts. The
    keyed uniforms of the draw are fixed per candidate, so a re-curation re-draws every
    candidate under the new policy; calibration weighs each reviewed item by the draw of the
    policy whose verdicts it reads, never by another policy's probability. A candidate a
    curator sent by hand has no draw and never enters the weighted estimates."""

    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="draws")
    policy = models.ForeignKey(CurationPolicy, on_delete=models.PROTECT, related_name="+")
    stratum = models.CharField(max_length=310)
    inclusion_probability = models.FloatField()
    # The filter whose audit drew it; empty: the main sample.
    audit_filter = models.CharField(max_length=20, blank=True, default="")
    drawn_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["candidate", "policy"], name="sampledraw_once"),
            models.CheckConstraint(
                condition=Q(inclusion_probability__gt=0) & Q(inclusion_probability__lte=1),
                name="sampledraw_probability_unit",
            ),
        ]

    def __str__(self) -> str:
        return f"draw of candidate {self.candidate_id} under policy {self.policy_id}"


class CandidateAction(models.Model):
    """A curator's action on candidates (one, or a filtered set): who, why,
    what, on which set, and how far it got. The explorer polls this row while
    a large set is worked through by a job."""

    class Kind(models.TextChoices):
        RECURATE = "recurate", "Re-curate under the current policy"
        QUEUE = "queue", "Send to the review queue"
        REJECT = "reject", "Reject"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    user = models.ForeignKey("auth.User", on_delete=models.PROTECT, related_name="+")
    reason = models.TextField()
    # The explorer's filter as confirmed (query-string values), and the newest
    # candidate id it could have matched then: the set acted on.
    query = models.JSONField(default=dict)
    max_id = models.BigIntegerField()
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    job_id = models.CharField(max_length=100, blank=True, default="")
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(reason=""), name="candidateaction_has_reason"),
            models.CheckConstraint(
                condition=Q(done__lte=models.F("total")), name="candidateaction_done_le_total"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} on {self.total} candidate(s) ({self.status})"


class CandidateActionItem(models.Model):
    """One candidate of an action's set, snapshotted when the action was
    confirmed; `done_at` makes a retried job skip what was done."""

    action = models.ForeignKey(CandidateAction, on_delete=models.CASCADE, related_name="items")
    candidate = models.ForeignKey(Candidate, on_delete=models.PROTECT, related_name="actions")
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["action", "candidate"], name="candidateactionitem_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"candidate #{self.candidate_id} of action #{self.action_id}"


# --- daily rollups ------------------------------------------------------------


class JudgeVerdict(models.Model):
    """The LLM judge's answer for one text under one policy version: a re-check or a
    re-curation asks again only when the content, the judge model or the policy changed.
    Only verdicts are kept; a failure (no verdict) is asked again."""

    content_hash = models.CharField(max_length=64)
    policy_version = models.PositiveIntegerField()
    model = models.CharField(max_length=100)  # FilterDecision.scorer's length
    prompt_version = models.CharField(max_length=40)
    passed = models.BooleanField()
    scores = models.JSONField(default=dict)
    reason = models.TextField()
    latency_ms = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["content_hash", "policy_version"], name="judge_verdict_unique"
            )
        ]

    def __str__(self) -> str:
        return f"judge verdict {self.content_hash[:12]} (policy v{self.policy_version})"


class DedupListing(models.Model):
    """A candidate listed under one of its dedup keys: dedup reads the candidates a chunk
    can match by key from this table's primary key alone (an index-only scan), so a lookup
    costs the keys and their matches, never the table's size. Inserted by the transaction
    that stores the candidate, before it takes the dedup lock
    (`candidates.dedup_keys_lock`), so the lock is held for a short re-check and the
    commit, not for writing the listing. `xid`: the id of the transaction that
    wrote the row (a re-curation that changes a verdict writes it again): the re-check
    reads only rows of transactions the chunk's first read could not see
    (`candidates.dedup_listed_since`), through the `xid` index, whatever the table's size.
    No foreign key: a listing row outlives a deleted candidate, which dedup never reads."""

    pk = models.CompositePrimaryKey("key", "candidate_id")
    key = models.BigIntegerField()
    candidate_id = models.BigIntegerField()
    xid = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["xid"], name="dedup_listing_xid")]

    def __str__(self) -> str:
        return f"{self.key}: #{self.candidate_id}"
