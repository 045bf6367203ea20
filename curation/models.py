"""What production traffic leaves behind: sources, their API tokens, interactions
and feedback. Invariants live in database constraints so no code path (bulk SQL,
admin, shell) can break them."""

import hashlib
import secrets

import pghistory
import pgtrigger
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import BrinIndex, GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import Q

from flywheel_site.models import MetricDayBase

ROLES = ("system", "user", "assistant", "tool")


class FeedbackKind(models.TextChoices):
    # Labels are what people read on every page (issue 12: no raw keys on screen).
    THUMBS_UP = "thumbs_up", "thumbs up"
    THUMBS_DOWN = "thumbs_down", "thumbs down"
    RATING = "rating", "rating"
    ACCEPTED = "accepted", "accepted"
    COPIED = "copied", "copied"
    REGENERATED = "regenerated", "regenerated"
    EDITED = "edited", "edited"
    CORRECTED = "corrected", "corrected"
    COMMENT = "comment", "comment"


TEXT_KINDS = (FeedbackKind.EDITED, FeedbackKind.CORRECTED)


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


@pghistory.track(
    # Curation bookkeeping changes on every row; a snapshot per state change would
    # double the table. Only changes to the content are history.
    pghistory.UpdateEvent(
        condition=pghistory.AnyChange(
            exclude=[
                "curation_state",
                "curation_claimed_at",
                "curation_error",
                "curation_failed_at",
            ]
        )
    ),
    pghistory.DeleteEvent(),
)
class Interaction(models.Model):
    """One model call as the producing app saw it, with PII already redacted."""

    class CurationState(models.TextChoices):
        PENDING = "pending"
        DONE = "done"
        # Curating this row raised: set aside with its error so the rest of its
        # chunk, and every later sweep, carry on. A curator retries it.
        FAILED = "failed"

    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="interactions")
    event_id = models.CharField(max_length=200)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField()
    model = models.CharField(max_length=200, blank=True, default="")
    task_type = models.CharField(max_length=100, blank=True, default="")
    messages = models.JSONField()
    response = models.TextField()
    usage = models.JSONField(default=dict, blank=True)
    latency_ms = models.IntegerField(null=True, blank=True)
    user_hash = models.CharField(max_length=64, blank=True, default="")
    session_id = models.CharField(max_length=200, blank=True, default="")
    segment = models.CharField(max_length=100, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    pii = models.JSONField(default=dict, blank=True)
    # Outbox for curation: ingest leaves rows pending; jobs and the sweeper move
    # them to done, so nothing committed is ever forgotten if Redis loses a job.
    curation_state = models.CharField(
        max_length=10, choices=CurationState.choices, default=CurationState.PENDING
    )
    curation_claimed_at = models.DateTimeField(null=True, blank=True)
    # db_default: ingest writes rows with raw SQL that names no bookkeeping column.
    curation_error = models.TextField(blank=True, default="", db_default="")
    curation_failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "event_id"], name="interaction_unique_event"),
            models.CheckConstraint(
                condition=Q(curation_state__in=["pending", "done", "failed"]),
                name="interaction_valid_curation_state",
            ),
            models.CheckConstraint(
                condition=~Q(curation_state="failed") | Q(curation_failed_at__isnull=False),
                name="interaction_failed_has_time",
            ),
            models.CheckConstraint(
                condition=Q(latency_ms__isnull=True) | Q(latency_ms__gte=0),
                name="interaction_latency_non_negative",
            ),
        ]
        indexes = [
            models.Index(
                fields=["received_at"],
                condition=Q(curation_state="pending"),
                name="interaction_pending_idx",
            ),
            # The runs page lists failed rows, newest first; they are few.
            models.Index(
                fields=["-curation_failed_at"],
                condition=Q(curation_state="failed"),
                name="interaction_failed_idx",
            ),
            models.Index(fields=["occurred_at"], name="interaction_occurred_idx"),
            # The canary reads each arm's interactions by model over a time window.
            models.Index(fields=["model", "received_at"], name="interaction_model_recv_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.source_id}:{self.event_id}"

    @property
    def prompt_text(self) -> str:
        return "\n".join(m.get("content", "") for m in self.messages if m.get("role") == "user")


@pghistory.track(pghistory.UpdateEvent(), pghistory.DeleteEvent())
class Feedback(models.Model):
    """What a user did with an interaction's output. May arrive before the
    interaction: it is then kept with `interaction` empty and linked later."""

    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="feedback")
    event_id = models.CharField(max_length=200)
    interaction_event_id = models.CharField(max_length=200)
    interaction = models.ForeignKey(
        Interaction, null=True, blank=True, on_delete=models.PROTECT, related_name="feedback"
    )
    kind = models.CharField(max_length=20, choices=FeedbackKind.choices)
    rating = models.SmallIntegerField(null=True, blank=True)
    comment = models.TextField(blank=True, default="")
    final_text = models.TextField(null=True, blank=True)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField()
    user_hash = models.CharField(max_length=64, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    pii = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name_plural = "feedback"
        constraints = [
            models.UniqueConstraint(fields=["source", "event_id"], name="feedback_unique_event"),
            models.CheckConstraint(
                condition=Q(kind__in=FeedbackKind.values), name="feedback_valid_kind"
            ),
            models.CheckConstraint(
                condition=~Q(kind__in=TEXT_KINDS)
                | (Q(final_text__isnull=False) & ~Q(final_text="")),
                name="feedback_edit_has_final_text",
            ),
            models.CheckConstraint(
                condition=~Q(kind=FeedbackKind.RATING)
                | (Q(rating__isnull=False) & Q(rating__gte=1) & Q(rating__lte=5)),
                name="feedback_rating_in_range",
            ),
        ]
        indexes = [
            models.Index(
                fields=["source", "interaction_event_id"],
                condition=Q(interaction__isnull=True),
                name="feedback_unlinked_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} on {self.interaction_event_id}"


# --- curation -----------------------------------------------------------------


class CandidateKind(models.TextChoices):
    PREFERENCE = "preference", "preference pair"
    SFT = "sft", "SFT (approved as is)"
    NEEDS_ANSWER = "needs_answer", "needs an answer"


def default_enabled_filters() -> list[str]:
    from curation.filters import FILTER_ORDER

    return list(FILTER_ORDER)


def default_judge_rubric() -> str:
    from curation.judge_rubric import DEFAULT_RUBRIC

    return DEFAULT_RUBRIC


def default_audit_rates() -> dict[str, float]:
    # Text the PII filter caught is not put in front of reviewers to measure it.
    return {"pii": 0.0}


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class CurationPolicy(models.Model):
    """Every threshold, the enabled filters, the blocklist and the sampling
    settings. A row is one version: editing creates the next version, and the
    database refuses updates and deletes of existing ones (pgtrigger)."""

    version = models.PositiveIntegerField(unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    note = models.TextField(blank=True, default="")
    min_words = models.PositiveIntegerField(default=20)
    band_low = models.FloatField(default=0.10)
    band_high = models.FloatField(default=0.95)
    band_measure = models.CharField(
        max_length=4, default="char", choices=[("char", "characters"), ("word", "words")]
    )
    toxicity_threshold = models.FloatField(default=0.1)
    # Optional thresholds per Detoxify label, e.g. {"threat": 0.05}.
    toxicity_per_label = models.JSONField(default=dict, blank=True)
    quality_min = models.FloatField(default=0.6)
    near_dup_threshold = models.FloatField(default=0.9)
    enabled_filters = models.JSONField(default=default_enabled_filters)
    blocklist_terms = models.JSONField(default=list, blank=True)
    blocklist_patterns = models.JSONField(default=list, blank=True)
    sample_rate = models.FloatField(default=0.075)
    needs_answer_rate = models.FloatField(default=1.0)
    sft_rate = models.FloatField(default=0.01)
    # Strata smaller than rate would sample get at least this many items.
    min_per_stratum = models.PositiveIntegerField(default=5)
    reviews_required = models.PositiveSmallIntegerField(default=1)
    # The audit sample: this share of the candidates each filter rejects is
    # reviewed blind, so the filters can be calibrated against human outcomes.
    audit_rate = models.FloatField(default=0.02)
    # Overrides per filter, e.g. {"toxicity": 0.05, "pii": 0}.
    audit_rates = models.JSONField(default=default_audit_rates, blank=True)
    # The LLM judge's system prompt: versioned with the policy (curation/judge.py).
    judge_rubric = models.TextField(default=default_judge_rubric)

    class Meta:
        verbose_name_plural = "curation policies"
        constraints = [
            models.CheckConstraint(
                condition=Q(band_low__gte=0)
                & Q(band_low__lte=models.F("band_high"))
                & Q(band_high__lte=1),
                name="policy_band_valid",
            ),
            models.CheckConstraint(
                condition=Q(sample_rate__gte=0, sample_rate__lte=1)
                & Q(needs_answer_rate__gte=0, needs_answer_rate__lte=1)
                & Q(sft_rate__gte=0, sft_rate__lte=1)
                & Q(toxicity_threshold__gte=0, toxicity_threshold__lte=1)
                & Q(quality_min__gte=0, quality_min__lte=1)
                & Q(near_dup_threshold__gt=0, near_dup_threshold__lte=1),
                name="policy_fractions_valid",
            ),
            models.CheckConstraint(
                condition=Q(audit_rate__gte=0, audit_rate__lte=1), name="policy_audit_rate_valid"
            ),
            models.CheckConstraint(condition=Q(reviews_required__gte=1), name="policy_reviews_min"),
        ]
        triggers = [
            pgtrigger.Protect(
                name="policy_read_only", operation=pgtrigger.Update | pgtrigger.Delete
            ),
        ]

    def __str__(self) -> str:
        return f"policy v{self.version}"

    def filter_policy(self):
        from curation.filters import FilterPolicy

        return FilterPolicy(
            min_words=self.min_words,
            band_low=self.band_low,
            band_high=self.band_high,
            band_measure=self.band_measure,
            toxicity_threshold=self.toxicity_threshold,
            quality_min=self.quality_min,
            near_dup_threshold=self.near_dup_threshold,
            blocklist_terms=tuple(self.blocklist_terms),
            blocklist_patterns=tuple(self.blocklist_patterns),
            enabled=tuple(self.enabled_filters),
        )


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
    exact_key = models.CharField(max_length=64, db_index=True)
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
            GinIndex(fields=["lsh_bands"], name="candidate_lsh_bands_gin"),
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


RUN_WAITING = "Waiting for a worker."
RUN_STARTED = "Started."
RUN_SO_FAR = "{done} of {total} interaction(s) curated so far."
RUN_STOPPED = "Stopped after {done} of {total}; the sweeper curates what it left (see the error)."
RUN_NOTHING_PENDING = "No interaction was pending; it re-checked held candidates."
RUN_EMPTY = "It was given no interactions."
RUN_ALL_ELSEWHERE = (
    "Nothing left to do: all {total} interaction(s) had already been curated by another run "
    "(a command, another job or the sweeper) when this one started."
)
RUN_SOME_ELSEWHERE = (
    "Curated {done} of {total}; the other {elsewhere} had already been curated by another run."
)
RUN_ALL_HERE = "Curated all {done} interaction(s) it was given."


class CurationRun(models.Model):
    """One curation job, sweep or command: the row the UI polls."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    class Trigger(models.TextChoices):
        INGEST = "ingest"
        SWEEPER = "sweeper"
        COMMAND = "command"
        RECURATE = "recurate"
        HELD = "held"

    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    policy = models.ForeignKey(
        CurationPolicy, null=True, blank=True, on_delete=models.PROTECT, related_name="runs"
    )
    job_id = models.CharField(max_length=100, blank=True, default="")
    total = models.PositiveIntegerField(default=0)
    interactions = models.PositiveIntegerField(default=0)
    candidates = models.PositiveIntegerField(default=0)
    passed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    held = models.PositiveIntegerField(default=0)
    sampled = models.PositiveIntegerField(default=0)
    failed_by_filter = models.JSONField(default=dict, blank=True)
    # Interactions whose curation raised and were set aside as failed.
    errored = models.PositiveIntegerField(default=0)
    scorer = models.CharField(max_length=100, blank=True, default="")
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["-created_at"], name="curationrun_recent_idx")]

    def __str__(self) -> str:
        return f"run #{self.pk} ({self.status})"

    @property
    def explanation(self) -> str:
        """What the run did, in a sentence for its row: "0 / 343" alone reads as a failure
        when the interactions had simply been curated by another run first (the demo
        curates synchronously, then the ingest jobs find nothing left)."""
        done, total = self.interactions, self.total
        elsewhere = max(total - done, 0)
        if self.status == self.Status.QUEUED:
            return RUN_WAITING
        if self.status == self.Status.RUNNING:
            return RUN_SO_FAR.format(done=done, total=total) if total else RUN_STARTED
        if self.status == self.Status.FAILED:
            return RUN_STOPPED.format(done=done, total=total)
        if not total:
            return RUN_NOTHING_PENDING if self.trigger == self.Trigger.SWEEPER else RUN_EMPTY
        if not done:
            return RUN_ALL_ELSEWHERE.format(total=total)
        if elsewhere:
            return RUN_SOME_ELSEWHERE.format(done=done, total=total, elsewhere=elsewhere)
        return RUN_ALL_HERE.format(done=done)


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


class DedupClaim(models.Model):
    """One row per dedup key (an exact key's prefix or an LSH band hash) ever seen.
    A chunk's write step locks the rows of its keys (`candidates.dedup_keys_claim`), so
    two workers whose candidates could match each other write one after the other, and
    workers whose candidates cannot, never wait for each other."""

    key = models.BigIntegerField(primary_key=True)

    def __str__(self) -> str:
        return str(self.key)


class CurationMetricDay(MetricDayBase):
    """Curation's daily rollup (`curation.rollups`)."""


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
