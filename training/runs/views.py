"""Training run and model registry pages (admin role). Thin: services and selectors do the
work. A run's page polls its own progress fragment every 2 s while the run is active."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from flywheel_site.access import ADMIN, require_role
from flywheel_site.http import int_param, render_page
from flywheel_site.textcheck import CONTROL_REFUSED, has_control_characters
from training.errors import TrainingError
from training.registry import selectors as selectors_canary
from training.registry import services as registry
from training.registry.models import Experiment, ModelVersion
from training.runs import selectors as selectors_runs
from training.runs import services as runs

RUN_STARTED = "Queued training run #{pk} on {version}."
PROMOTED = "{model} is now the current model."
CANARY_STARTED = "{model} is now the canary: {share:.0%} of the keys, decided by live feedback."
REJECTED = "{model} was rejected."
NO_SUCH_RUN = "No training run #{pk}."
CHOOSE_VERSION = "Choose a frozen dataset version."
NO_SUCH_MODEL = "No model #{pk}."


def _model_or_404(pk: int) -> ModelVersion:
    model = selectors_runs.model_get(pk=pk)
    if model is None:
        raise Http404(NO_SUCH_MODEL.format(pk=pk))
    return model


@login_required
def run_list(request):
    require_role(request.user, ADMIN)
    page = selectors_runs.runs_page(before=int_param(request.GET.get("before")))
    context = {
        "runs": page,
        "polling": any(run.is_active for run in page),
        "next_before": page[-1].pk if len(page) == selectors_runs.PAGE_SIZE else None,
        "versions": selectors_runs.versions_trainable(),
        "current": selectors_canary.current_model(),
        "trainer": settings.FLYWHEEL_TRAINER,
        "base_model": runs.base_model_dir(),
    }
    return render_page(request, "training/runs/runs.html", "runs-table", context)


@login_required
@require_POST
def run_start(request):
    require_role(request.user, ADMIN)
    version = selectors_runs.version_get(pk=int_param(request.POST.get("version")))
    if version is None:
        messages.error(request, CHOOSE_VERSION)
        return redirect("runs:runs")
    try:
        run = runs.training_run_create(version=version, user=request.user)
    except TrainingError as error:
        messages.error(request, error.message)
        return redirect("runs:runs")
    messages.success(request, RUN_STARTED.format(pk=run.pk, version=version))
    return redirect("runs:run", pk=run.pk)


@login_required
def run_detail(request, pk: int):
    require_role(request.user, ADMIN)
    run = selectors_runs.run_get(pk=pk)
    if run is None:
        raise Http404(NO_SUCH_RUN.format(pk=pk))
    context = {
        "run": run,
        "chart": selectors_runs.loss_chart(run),
        "model": getattr(run, "model_version", None),
        "accounting": selectors_runs.eval_accounting(run.metrics.get("eval")),
    }
    return render_page(request, "training/runs/run.html", "progress", context)


@login_required
def model_list(request):
    require_role(request.user, ADMIN)
    return render(
        request,
        "training/runs/models.html",
        {
            "models": selectors_runs.models_list(),
            "current": selectors_canary.current_model(),
            "events": selectors_runs.model_events(limit=30),
            "base_model": runs.base_model_dir(),
        },
    )


def _model_page(request, model: ModelVersion, *, error: str = "", decision: str = "", status=200):
    """The model, its gate, its canary experiments (the latest one live: the fragment
    polls itself while the experiment runs) and its history; after a refused decision,
    the error and the open confirmation."""
    experiments = selectors_canary.experiments_for_model(model=model)
    experiment = experiments[0] if experiments else None
    context = {
        "model": model,
        "current": selectors_canary.current_model(),
        "rows": selectors_runs.gate_rows(model=model),
        "accounting": selectors_runs.eval_accounting(model.metrics),
        "events": selectors_runs.model_events(model=model),
        "can_decide": model.status == ModelVersion.Status.CANDIDATE
        and (experiment is None or not experiment.is_running),
        "canary": settings.FLYWHEEL_CANARY,
        "defaults": {
            "share": settings.FLYWHEEL_CANARY_SHARE,
            "min_sample": settings.FLYWHEEL_CANARY_MIN_SAMPLE,
            "hours": settings.FLYWHEEL_CANARY_MAX_DURATION_S / 3600,
            "margin": settings.FLYWHEEL_CANARY_MARGIN,
            "margin_kind": settings.FLYWHEEL_CANARY_MARGIN_KIND,
        },
        "experiment": experiment,
        "comparison": selectors_canary.experiment_comparison(
            experiment=experiment, now=timezone.now()
        )
        if experiment
        else None,
        "keyed": selectors_canary.experiment_keyed(experiment=experiment, now=timezone.now())
        if experiment
        else None,
        "alerts": [a for a in selectors_canary.monitor_alerts_open() if a.model_id == model.pk],
        "error": error,
        "decision": decision,
    }
    return render_page(request, "training/runs/model.html", "experiment", context, status=status)


@login_required
def model_detail(request, pk: int):
    require_role(request.user, ADMIN)
    return _model_page(request, _model_or_404(pk))


@login_required
@require_POST
def model_decide(request, pk: int, decision: str):
    """Promote or reject a candidate (the URL names the decision), with a reason: without
    one, nothing changes and the page asks again (422). The service refuses a model that is
    no longer a candidate."""
    require_role(request.user, ADMIN)
    model = _model_or_404(pk)
    reason = request.POST.get("reason", "").strip()
    if not reason:
        return _model_page(request, model, error=registry.ERR_REASON, decision=decision, status=422)
    if has_control_characters(reason):
        return _model_page(request, model, error=CONTROL_REFUSED, decision=decision, status=422)
    try:
        if decision == "reject":
            registry.model_version_reject(model=model, user=request.user, reason=reason)
            done = REJECTED.format(model=model)
        else:
            accepted = registry.model_version_accept(
                model=model, user=request.user, reason=reason, **_overrides(request.POST)
            )
            done = (
                CANARY_STARTED.format(model=model, share=accepted.share)
                if isinstance(accepted, Experiment)
                else PROMOTED.format(model=model)
            )
    except TrainingError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, done)
    return redirect("runs:model", pk=pk)


BAD_OVERRIDE = "{field} must be {rule}, or blank for the setting."
OVERRIDES = (
    ("share", float, lambda v: 0 < v < 1, "a number between 0 and 1"),
    ("min_sample", int, lambda v: 0 < v <= 10_000_000, "a positive whole number"),
    ("hours", int, lambda v: 0 < v <= 24 * 366, "a whole number of hours up to a year"),
    ("margin", float, lambda v: 0 <= v < 1, "a number from 0 up to 1"),
    ("margin_kind", str, lambda v: v in ("absolute", "relative"), "absolute or relative"),
)


def _overrides(post) -> dict:
    """Per-experiment overrides of the settings; blank: the setting. A bad value refuses
    the whole promotion (nothing starts)."""
    values = {}
    for field, kind, valid, rule in OVERRIDES:
        raw = (post.get(field) or "").strip()
        if not raw:
            values[field] = None
            continue
        try:
            value = kind(raw)
        except ValueError:
            value = None
        if value is None or not valid(value):
            raise TrainingError(BAD_OVERRIDE.format(field=field, rule=rule))
        values[field] = value
    hours = values.pop("hours")
    return {**values, "max_duration_s": hours * 3600 if hours else None}
