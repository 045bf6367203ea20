"""Training run and model registry pages (admin role). Thin: services and selectors do the
work. A run's page polls its own progress fragment every 2 s while the run is active."""

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from flywheel_site.access import ADMIN, role_required
from flywheel_site.http import int_param, render_page, require_post
from training.errors import TrainingError
from training.registry import selectors as selectors_canary
from training.registry import services as registry
from training.registry.forms import ExperimentActionForm, ReasonForm
from training.registry.models import Experiment, ModelVersion
from training.runs import selectors as selectors_runs
from training.runs import services as runs
from training.runs.forms import ModelDecisionForm, RunStartForm

RUN_STARTED = "Queued training run #{pk} on {version}."
PROMOTED = "{model} is now the current model."
CANARY_STARTED = "{model} is now the canary: {share:.0%} of the keys, decided by live feedback."
REJECTED = "{model} was rejected."
CHOOSE_VERSION = "Choose a frozen dataset version."
CHOOSE_PRESET = "Choose the settings or the demo preset."


def _fit_warning(request) -> dict | None:
    """After a start the fit check held back (`run_start`): the warning and a form that
    starts the run anyway, from the version and preset in the query."""
    version = selectors_runs.version_get(pk=int_param(request.GET.get("version")))
    preset = selectors_runs.start_preset(request.GET.get("preset", ""))
    if version is None or preset is None:
        return None
    check = selectors_runs.pairs_skipped(version=version, max_length=preset["max_length"])
    return {**check, "preset": preset["name"]} if check and check["most"] else None


@role_required(ADMIN)
def run_list(request):
    page = selectors_runs.runs_page(before=int_param(request.GET.get("before")))
    versions = selectors_runs.versions_trainable()
    context = {
        "fit": _fit_warning(request),
        "runs": page.rows,
        "polling": any(run.is_active for run in page.rows),
        "next_before": page.older,
        "versions": versions,
        "start_form": RunStartForm.shown(versions),
        "current": selectors_canary.current_model(),
        "trainer": settings.FLYWHEEL_TRAINER,
        "base_model": runs.base_model_dir(),
        "presets": selectors_runs.start_presets(),
    }
    return render_page(request, "training/runs/runs.html", "runs-table", context)


@role_required(ADMIN)
@require_POST
def run_start(request):
    version = selectors_runs.version_get(pk=RunStartForm(request.POST).version_pk())
    if version is None:
        messages.error(request, CHOOSE_VERSION)
        return redirect("runs:runs")
    preset = request.POST.get("preset") or "settings"
    if preset not in selectors_runs.START_PRESETS:
        messages.error(request, CHOOSE_PRESET)
        return redirect("runs:runs")
    if request.POST.get("confirm") != "skip":
        max_length = selectors_runs.start_preset(preset)["max_length"]
        check = selectors_runs.pairs_skipped(version=version, max_length=max_length)
        if check and check["most"]:
            # Most pairs would carry no signal: say so and ask, on a page that answers GET.
            query = urlencode({"version": version.pk, "preset": preset})
            return redirect(f"{reverse('runs:runs')}?{query}#fit-warning")
    try:
        run = runs.training_run_create(
            version=version, user=request.user, overrides=selectors_runs.START_PRESETS[preset]
        )
    except TrainingError as error:
        messages.error(request, error.message)
        return redirect("runs:runs")
    messages.success(request, RUN_STARTED.format(pk=run.pk, version=version))
    return redirect("runs:run", pk=run.pk)


@role_required(ADMIN)
def run_detail(request, pk: int):
    run = get_object_or_404(selectors_runs.runs(), pk=pk)
    context = {
        "run": run,
        "chart": selectors_runs.loss_chart(run),
        "model": getattr(run, "model_version", None),
        "accounting": selectors_runs.eval_accounting(run.metrics.get("eval")),
    }
    return render_page(request, "training/runs/run.html", "progress", context)


@role_required(ADMIN)
def model_list(request):
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
    current = selectors_canary.current_model()
    context = {
        "model": model,
        "current": current,
        "promote_form": ModelDecisionForm.shown(current=current),
        "reason_form": ReasonForm(auto_id=False),
        "experiment_form": ExperimentActionForm(auto_id=False),
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


@role_required(ADMIN)
def model_detail(request, pk: int):
    return _model_page(request, get_object_or_404(selectors_runs.models(), pk=pk))


@role_required(ADMIN)
@require_post("runs:model", "pk")
def model_decide(request, pk: int, decision: str):
    """Promote or reject a candidate (the URL names the decision), with a reason: without
    one, nothing changes and the page asks again (422). The service refuses a model that is
    no longer a candidate."""
    model = get_object_or_404(selectors_runs.models(), pk=pk)
    form = ModelDecisionForm(request.POST)
    form.is_valid()
    if error := form.reason_error():
        return _model_page(request, model, error=error, decision=decision, status=422)
    reason = form.cleaned_data["reason"]
    try:
        if decision == "reject":
            registry.model_version_reject(model=model, user=request.user, reason=reason)
            done = REJECTED.format(model=model)
        else:
            # A bad override refuses the whole promotion: nothing starts.
            if error := form.override_error():
                raise TrainingError(error)
            accepted = registry.model_version_accept(
                model=model, user=request.user, reason=reason, **form.overrides()
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
