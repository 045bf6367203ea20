"""GET /api/v1/metrics: the dashboard's figures as JSON, for a token with the `metrics`
scope. The shapes below are the OpenAPI schema; the figures come from
`training.metrics.flywheel_metrics` (daily rollups, cost by days shown)."""

from typing import Annotated

from django.http import HttpRequest
from ninja import Query, Router, Schema
from ninja.errors import HttpError
from pydantic import AfterValidator, Field

from curation.models import TokenScope
from flywheel_site.api_auth import TokenAuth
from flywheel_site.api_errors import ErrorOut
from training.metrics.selectors import MAX_DAYS, flywheel_metrics

router = Router(tags=["metrics"])
OTHER_SOURCE = (
    "This token reads only its own source ({source}); a token with the all_sources scope "
    "reads the others."
)

Counts = dict[str, int]


# PostgreSQL text cannot hold NUL: refused here as a 422, not a 500 from the driver. Checked
# by a validator rather than by Field's `pattern`, whose refusal quotes the regex; the schema
# still documents the rule for generated clients.
NO_NUL = r"^[^\x00]*$"
HAS_NUL = "must not contain a NUL character"


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError(HAS_NUL)
    return value


Name = Annotated[str, AfterValidator(_no_nul), Field(json_schema_extra={"pattern": NO_NUL})]


class MetricsQuery(Schema):
    days: int = Field(30, ge=1, le=MAX_DAYS, description="days shown, ending today (UTC)")
    source: Name = Field("", max_length=100, description="one source's figures (its name)")
    task_type: Name = Field("", max_length=100, description="one task type's figures")
    model: Name = Field("", max_length=200, description="one production model's figures")


class DayOut(Schema):
    date: str = Field(description="the day, YYYY-MM-DD (UTC)")
    interactions: int = Field(description="interactions that occurred that day")
    with_feedback: int = Field(description="of those, interactions carrying any feedback")
    feedback: Counts = Field(description="linked feedback events that day, by kind")
    edits: int = Field(description="feedback of kind edited or corrected")
    candidates: Counts = Field(description="candidates made that day, by kind")
    passed: int = Field(description="of those, passing every filter")
    failed: Counts = Field(description="of those, failing, by the filter that failed them")
    held: int = Field(description="of those, held (toxicity model unavailable)")
    queued: int = Field(description="items that entered the review queue that day")
    reviews: int = Field(description="reviews submitted that day")
    reviews_by: Counts = Field(
        description="reviews submitted that day, by reviewer pseudonym (stable, names nobody)"
    )
    approved: int = Field(description="outcomes approved that day")
    rejected: int = Field(description="outcomes rejected that day")
    adjudicated: int = Field(description="of those outcomes, decided by a curator")
    adjudication: int = Field(description="items queued that day that went to adjudication")
    gold: int = Field(description="gold pairs approved that day (corrections apart)")
    versions: int = Field(description="dataset versions frozen that day")
    lag: Counts = Field(description="curation lag histogram: bucket upper bound (s) -> n")
    lag_p50_s: float | None = Field(description="median curation lag (bucket upper bound, s)")
    lag_p95_s: float | None = Field(description="95th percentile curation lag (s)")
    alpha: float | None = Field(
        description="Krippendorff's alpha on the decision, items whose last review was that day"
    )


class QueueOut(Schema):
    depth: Counts = Field(description="queued items now, by candidate kind")
    total: int
    oldest_age_s: float | None = Field(description="age of the oldest queued item, seconds")
    adjudication: int = Field(description="items waiting for a curator now")


class CycleOut(Schema):
    dataset_version: str
    gold: int = Field(description="pairs in the version's train and eval splits")
    model: str
    status: str
    gate_metric: str
    candidate: float | None
    baseline: float | None
    delta: float | None = Field(description="candidate minus baseline on the gate metric")
    delta_ci: list[float | None] = Field(description="[lo, hi] of the delta, when known")
    n: int | None = Field(description="eval pairs behind the gate, when known")
    test: str
    passed: bool | None
    promoted_at: str | None
    time_to_improvement_s: float | None = Field(
        description="median seconds from ingest to this promotion, over the pairs it shipped"
    )


class TrainingOut(Schema):
    dataset: str
    latest_version: int | None
    new_gold: int = Field(description="gold the next freeze could add")
    threshold: int = Field(description="the dataset's training threshold")


class HealthOut(Schema):
    verdict: str = Field(description="healthy, stalling or regressing")
    causes: list[str]


class WindowOut(Schema):
    days: int
    start: str
    end: str
    source: str
    task_type: str
    model: str


class MetricsOut(Schema):
    window: WindowOut
    days: list[DayOut]
    totals: dict[str, int | float | Counts | None]
    queue: QueueOut
    cycles: list[CycleOut]
    training: list[TrainingOut]
    health: HealthOut


@router.get(
    "",
    # The id the schema had before training became sub-packages: generated clients name it.
    operation_id="training_api_metrics_metrics",
    auth=TokenAuth(TokenScope.METRICS),
    summary="The flywheel's figures: daily collection, curation, review and training data, "
    "the review queue, model quality per cycle and a health verdict",
    description="A token reads its own source's figures; `source` may name another only "
    "for a token with the `all_sources` scope, which also reads every source at once and the "
    "training cycles (flywheel-wide). Reviewers appear as pseudonyms, never by name.",
    response={200: MetricsOut, 401: ErrorOut, 403: ErrorOut, 422: ErrorOut, 429: ErrorOut},
)
def metrics(request: HttpRequest, query: Query[MetricsQuery]):
    token = request.auth
    source = query.source
    all_sources = token.has_scope(TokenScope.ALL_SOURCES)
    if not all_sources:
        own = token.source.name
        if source and source != own:
            raise HttpError(403, OTHER_SOURCE.format(source=own))
        source = own
    figures = flywheel_metrics(
        days=query.days,
        source=source,
        task_type=query.task_type,
        model=query.model,
        reviewer_names=False,
    )
    if not all_sources:
        # Models and datasets are trained on every source's data.
        figures["cycles"], figures["training"] = [], []
    return figures
