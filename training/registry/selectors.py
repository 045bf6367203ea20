"""Reads for canary experiments and the monitor: what users did with each arm's answers.

The decision (`keyed_outcomes`) is analysed per route key, the unit the route randomises:
every matured interaction answered by either arm's model, with a key (`user_hash`), counts
for the arm its key was assigned to (intention to treat,
training.registry.route.arm_for_hash); those
without a key or answered by the other arm's model are counted as non-compliance, and the
keys' split is checked against the share (sample-ratio mismatch, training.registry.clustered). An
interaction matures once FLYWHEEL_CANARY_FEEDBACK_WINDOW_S has passed since it was received.

The display rows (`arm_outcomes`) are the interactions whose `model` is the arm's serving
name, received inside the window, each joined to its feedback: per interaction served (an
interaction nobody reacted to counts in the denominator).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import Levenshtein
from django.conf import settings
from django.db import connection
from django.db.models import Q

from training.registry import clustered, route, sequential
from training.registry.models import Experiment, ModelEvent, ModelVersion, MonitorAlert

# A higher rate of these is better; for every other metric a higher rate is worse.
GOOD_KINDS = ("thumbs_up", "accepted", "copied")

# One pass over the arm's interactions (the `(model, received_at)` index), each joined to
# its feedback once: the edits whose distance the Python side measures come back in the
# same statement, as one jsonb array, rather than from a second probe of every interaction.
_ARM_SQL = """
WITH w AS MATERIALIZED (
SELECT i.id, i.response, f.*
FROM curation_interaction i
LEFT JOIN LATERAL (
  SELECT
    bool_or(kind IN ('accepted', 'copied')) AS accepted,
    bool_or(kind = 'copied') AS copied,
    bool_or(kind IN ('edited', 'corrected')) AS edited,
    bool_or(kind = 'corrected') AS corrected,
    bool_or(kind = 'regenerated') AS regenerated,
    bool_or(kind = 'thumbs_up') AS thumbs_up,
    bool_or(kind = 'thumbs_down') AS thumbs_down,
    count(rating) FILTER (WHERE kind = 'rating') AS rating_n,
    sum(rating) FILTER (WHERE kind = 'rating') AS rating_sum,
    sum(rating * rating) FILTER (WHERE kind = 'rating') AS rating_sq,
    array_agg(final_text)
      FILTER (WHERE kind IN ('edited', 'corrected') AND final_text IS NOT NULL) AS final_texts
  FROM curation_feedback WHERE interaction_id = i.id
) f ON true
WHERE i.model = %s AND i.received_at >= %s AND i.received_at < %s
)
SELECT
  count(*) AS n,
  count(*) FILTER (WHERE accepted) AS accepted,
  count(*) FILTER (WHERE edited) AS edited,
  count(*) FILTER (WHERE regenerated) AS regenerated,
  count(*) FILTER (WHERE thumbs_up) AS thumbs_up,
  count(*) FILTER (WHERE thumbs_down) AS thumbs_down,
  count(*) FILTER (WHERE thumbs_down OR regenerated) AS down_or_regen,
  count(*) FILTER (WHERE corrected) AS corrected,
  count(*) FILTER (WHERE copied) AS copied,
  coalesce(sum(rating_n), 0) AS rating_n,
  coalesce(sum(rating_sum), 0) AS rating_sum,
  coalesce(sum(rating_sq), 0) AS rating_sq,
  (SELECT jsonb_agg(jsonb_build_array(response, final_texts, thumbs_down OR regenerated))
   FROM w WHERE final_texts IS NOT NULL) AS edits
FROM w
"""


BASE_MODEL_NAME = "the base model"


def current_model() -> ModelVersion | None:
    return ModelVersion.objects.filter(status=ModelVersion.Status.PROMOTED).first()


_TIME_TO_IMPROVEMENT = """
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM %(at)s - g.ingested_at))
FROM training_membership m JOIN training_goldpair g ON g.id = m.pair_id
WHERE m.version_id = %(version)s AND m.split IN ('train', 'eval')
  AND NOT EXISTS (SELECT 1 FROM training_membership p
                  WHERE p.version_id = %(previous)s AND p.pair_id = m.pair_id
                    AND p.split IN ('train', 'eval'))
"""


def time_to_improvement(*, version_id: int, previous_id: int | None, at: datetime):
    """Median seconds from ingest to `at` over the pairs first shipped by this promotion:
    in its version and not in the version of the promotion before. Reads the version's
    memberships: the registry stores it once, at promotion (`time_to_improvement_s`)."""
    with connection.cursor() as cursor:
        cursor.execute(
            _TIME_TO_IMPROVEMENT, {"at": at, "version": version_id, "previous": previous_id or 0}
        )
        value = cursor.fetchone()[0]
    return float(value) if value is not None else None


def time_to_improvement_of(model: ModelVersion) -> float | None:
    """`time_to_improvement` of `model` made current at its `promoted_at`, against the
    version of the gated model created before it that was last promoted (the dashboard's
    cycles, in the order they were trained)."""
    previous = (
        ModelVersion.objects.filter(gate_passed__isnull=False, promoted_at__isnull=False)
        .filter(
            Q(created_at__lt=model.created_at) | Q(created_at=model.created_at, pk__lt=model.pk)
        )
        .order_by("-created_at", "-pk")
        .values_list("dataset_version_id", flat=True)
        .first()
    )
    return time_to_improvement(
        version_id=model.dataset_version_id, previous_id=previous, at=model.promoted_at
    )


def models_trained_on(*, versions) -> list[ModelVersion]:
    """Models a quarantine of these dataset versions would roll back (wired into
    training.datasets.hooks by the site)."""
    return list(
        ModelVersion.objects.filter(dataset_version__in=versions)
        .exclude(status=ModelVersion.Status.ROLLED_BACK)
        .order_by("pk")
    )


# The primary metric per interaction, oriented so that true is worse (the metric is one of
# the names settings and Experiment allow; never user text).
_METRIC_FLAG = {
    "bad_outcome": "coalesce(f.thumbs_down OR f.regenerated, false)",
    "thumbs_down": "coalesce(f.thumbs_down, false)",
    "regenerated": "coalesce(f.regenerated, false)",
    "edited": "coalesce(f.edited, false)",
    "corrected": "coalesce(f.corrected, false)",
    "thumbs_up": "NOT coalesce(f.thumbs_up, false)",
    "accepted": "NOT coalesce(f.accepted, false)",
    "copied": "NOT coalesce(f.copied, false)",
}
_FEEDBACK_LATERAL = _ARM_SQL[
    _ARM_SQL.index("FROM curation_interaction") : _ARM_SQL.index("WHERE i.model")
]
_KEY_SQL = (
    "SELECT i.user_hash, i.model, i.received_at < %s AS matured, count(*) AS n, "
    "count(*) FILTER (WHERE {flag}) AS events "
    + _FEEDBACK_LATERAL
    + "WHERE i.model IN (%s, %s) AND i.received_at >= %s AND i.received_at < %s "
    "GROUP BY 1, 2, 3"
)
# Heavy edits of matured interactions not already bad: they add to bad_outcome per key.
_KEY_EDITS_SQL = """
SELECT i.id, i.user_hash, i.model, i.response, f.final_text
FROM curation_interaction i
JOIN curation_feedback f ON f.interaction_id = i.id
WHERE i.model IN (%s, %s) AND i.received_at >= %s AND i.received_at < %s
  AND f.kind IN ('edited', 'corrected') AND f.final_text IS NOT NULL
  AND NOT EXISTS (
    SELECT 1 FROM curation_feedback g
    WHERE g.interaction_id = i.id AND g.kind IN ('thumbs_down', 'regenerated')
  )
"""


def edit_distance(before: str, after: str) -> float:
    """Share of characters changed: 0 (untouched) to 1 (rewritten)."""
    longest = max(len(before), len(after))
    if longest == 0:
        return 0.0
    return Levenshtein.distance(before, after) / longest


def arm_outcomes(*, serving_name: str, start: datetime, end: datetime) -> dict:
    """Counts for one arm over [start, end)."""
    with connection.cursor() as cursor:
        cursor.execute(_ARM_SQL, [serving_name, start, end])
        columns = [c.name for c in cursor.description]
        counts = dict(zip(columns, cursor.fetchone(), strict=True))
    # Django's psycopg adapter hands jsonb over as text.
    edits = json.loads(counts.pop("edits") or "[]")
    worst = [  # per interaction, its most changed edit
        (max(edit_distance(response, text) for text in texts), already_bad)
        for response, texts, already_bad in edits
    ]
    heavy = [d for d, _ in worst if d >= settings.FLYWHEEL_HEAVY_EDIT_DISTANCE]
    heavy_only = sum(
        1 for d, bad in worst if d >= settings.FLYWHEEL_HEAVY_EDIT_DISTANCE and not bad
    )
    counts = {k: (float(v) if k.startswith("rating_") else int(v)) for k, v in counts.items()}
    counts["heavy_edit"] = len(heavy)
    counts["edit_distance_mean"] = sum(d for d, _ in worst) / len(worst) if worst else None
    counts["bad_outcome"] = counts.pop("down_or_regen") + heavy_only
    return counts


def metric_events(counts: dict, metric: str) -> int:
    """Events of the primary metric, oriented so that more is worse."""
    if metric in GOOD_KINDS:
        return counts["n"] - counts[metric]
    return counts[metric]


RATE_ROWS = (
    ("bad_outcome", "bad outcome (thumbs down, regenerate or heavy edit)"),
    ("accepted", "accepted or copied"),
    ("edited", "edited"),
    ("heavy_edit", "heavy edit"),
    ("regenerated", "regenerated"),
    ("thumbs_up", "thumbs up"),
    ("thumbs_down", "thumbs down"),
)


def _rows(control: dict, canary: dict, confidence: float) -> list[dict]:
    rows = []
    for key, label in RATE_ROWS:
        row = {"key": key, "label": label}
        for arm, counts in (("control", control), ("canary", canary)):
            n = counts["n"]
            row[arm] = {
                "events": counts[key],
                "rate": counts[key] / n if n else None,
                "interval": sequential.wilson_interval(counts[key], n, confidence=confidence)
                if n
                else None,
            }
        rows.append(row)
    return rows


def _rating(counts: dict, confidence: float) -> dict:
    n = int(counts["rating_n"])
    return {
        "n": n,
        "mean": counts["rating_sum"] / n if n else None,
        "interval": sequential.mean_interval(
            counts["rating_sum"], counts["rating_sq"], n, confidence=confidence
        ),
    }


def comparison(
    *,
    control_name: str,
    canary_name: str,
    start: datetime,
    end: datetime,
    metric: str,
    alpha: float,
    tau: float,
) -> dict:
    """Both arms' outcomes, each rate with a Wilson interval, and the always-valid interval
    of canary minus control on the primary metric (None until both arms have traffic)."""
    control = arm_outcomes(serving_name=control_name, start=start, end=end)
    canary = arm_outcomes(serving_name=canary_name, start=start, end=end)
    confidence = 1 - alpha
    test = None
    if control["n"] and canary["n"]:
        test = sequential.always_valid_difference(
            control=(metric_events(control, metric), control["n"]),
            canary=(metric_events(canary, metric), canary["n"]),
            alpha=alpha,
            tau=tau,
        )
    return {
        "metric": metric,
        "control": {"serving_name": control_name, **control},
        "canary": {"serving_name": canary_name, **canary},
        "rows": _rows(control, canary, confidence),
        "rating": {"control": _rating(control, confidence), "canary": _rating(canary, confidence)},
        "edit_distance": {
            "control": control["edit_distance_mean"],
            "canary": canary["edit_distance_mean"],
        },
        "test": test.as_dict() if test else None,
    }


def experiment_comparison(*, experiment: Experiment, now: datetime) -> dict:
    end = experiment.ended_at or now
    return comparison(
        control_name=experiment.control_serving_name,
        canary_name=experiment.canary_serving_name,
        start=experiment.started_at,
        end=end,
        metric=experiment.metric,
        alpha=experiment.alpha,
        tau=experiment.tau,
    )


def _heavy_edits(names: list[str], start: datetime, matured_before: datetime) -> dict:
    """(user_hash, model) -> matured interactions heavily edited and not already bad."""
    with connection.cursor() as cursor:
        cursor.execute(_KEY_EDITS_SQL, [*names, start, matured_before])
        rows = cursor.fetchall()
    heavy: dict[tuple[str, str], set[int]] = {}
    for pk, key_hash, model, response, final_text in rows:
        if edit_distance(response, final_text) >= settings.FLYWHEEL_HEAVY_EDIT_DISTANCE:
            heavy.setdefault((key_hash, model), set()).add(pk)
    return {group: len(pks) for group, pks in heavy.items()}


def keyed_outcomes(
    *,
    experiment_id: int,
    share: float,
    control_name: str,
    canary_name: str,
    metric: str,
    start: datetime,
    end: datetime,
    window: int | None = None,
) -> dict:
    """Per-arm sums over route keys (intention to treat), compliance and maturity counts;
    an interaction matures `window` seconds after it was received (default: the setting)."""
    window = settings.FLYWHEEL_CANARY_FEEDBACK_WINDOW_S if window is None else window
    matured_before = max(start, end - timedelta(seconds=window))
    names = [control_name, canary_name]
    with connection.cursor() as cursor:
        cursor.execute(
            _KEY_SQL.format(flag=_METRIC_FLAG[metric]), [matured_before, *names, start, end]
        )
        rows = cursor.fetchall()
    heavy = _heavy_edits(names, start, matured_before) if metric == "bad_outcome" else {}
    served = {route.CONTROL: control_name, route.CANARY: canary_name}
    per_key: dict[str, dict[str, list[int]]] = {route.CONTROL: {}, route.CANARY: {}}
    counts = {"matured": 0, "pending": 0, "no_key": 0, "crossed_over": 0}
    for key_hash, model, matured, n, events in rows:
        if not matured:
            counts["pending"] += n
            continue
        counts["matured"] += n
        if not key_hash:
            counts["no_key"] += n
            continue
        arm = route.arm_for_hash(experiment_id=experiment_id, share=share, key_hash=key_hash)
        if served[arm] != model:
            counts["crossed_over"] += n
        sums = per_key[arm].setdefault(key_hash, [0, 0])
        sums[0] += events + heavy.get((key_hash, model), 0)
        sums[1] += n
    arms = {
        arm: clustered.ArmSums.from_keys([tuple(v) for v in keys.values()])
        for arm, keys in per_key.items()
    }
    return {
        "control": arms[route.CONTROL],
        "canary": arms[route.CANARY],
        "counts": counts,
        "feedback_window_s": window,
        "matured_before": matured_before.isoformat(),
    }


def experiment_keyed(*, experiment: Experiment, now: datetime) -> dict:
    """The decision's evidence: the clustered comparison (None until both arms have a
    matured interaction) and the sample-ratio check."""
    keyed = keyed_outcomes(
        experiment_id=experiment.pk,
        share=experiment.share,
        control_name=experiment.control_serving_name,
        canary_name=experiment.canary_serving_name,
        metric=experiment.metric,
        start=experiment.started_at,
        end=experiment.ended_at or now,
        window=experiment.feedback_window_s,
    )
    control, canary = keyed["control"], keyed["canary"]
    test = None
    if control.n and canary.n:
        test = clustered.compare(
            control, canary, alpha=experiment.alpha, tau=experiment.tau,
            margin=experiment.margin, margin_kind=experiment.margin_kind,
        )  # fmt: skip
    srm = clustered.sample_ratio(
        keys_control=control.keys,
        keys_canary=canary.keys,
        share=experiment.share,
        threshold=settings.FLYWHEEL_CANARY_SRM_P,
    )
    return {
        "test": test,
        "srm": srm,
        "counts": keyed["counts"],
        "keys": {"control": control.keys, "canary": canary.keys},
        "n": {"control": control.n, "canary": canary.n},
        "feedback_window_s": keyed["feedback_window_s"],
    }


def experiment_running() -> Experiment | None:
    return (
        Experiment.objects.select_related("canary", "control")
        .filter(state=Experiment.State.RUNNING)
        .first()
    )


def experiments_for_model(*, model: ModelVersion) -> list[Experiment]:
    return list(
        Experiment.objects.select_related("canary", "control").filter(canary=model).order_by("-pk")
    )


def monitor_alerts_open() -> list[MonitorAlert]:
    """Open alerts, newest first: for the dashboard."""
    return list(
        MonitorAlert.objects.select_related("model", "previous")
        .filter(closed_at__isnull=True)
        .order_by("-pk")
    )


def previous_current(*, model: ModelVersion) -> ModelVersion | None:
    """The model `model` replaced as current (None: the base model)."""
    event = (
        ModelEvent.objects.filter(
            model=model, action__in=[ModelEvent.Action.PROMOTED, ModelEvent.Action.RESTORED]
        )
        .order_by("-pk")
        .first()
    )
    if event is None or event.other is None or event.other.status == "rolled_back":
        return None
    return event.other
