"""Training run and model registry pages (admin role). Thin: services and selectors do the
work. A run's page polls its own progress fragment every 2 s while the run is active."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from flywheel_site.access import ADMIN, require_role
from flywheel_site.http import int_param, render_page
from training import registry, runs, selectors_runs, trainer
from training.errors import TrainingError
from training.models import DatasetVersion, ModelVersion

RUN_STARTED = "Queued training run #{pk} on {version}."
PROMOTED = "{model} is now the current model."
REJECTED = "{model} was rejected."
NO_SUCH_RUN = "No training run #{pk}."
CHOOSE_VERSION = "Choose a frozen dataset version."


@login_required
def run_list(request):
    require_role(request.user, ADMIN)
    page = selectors_runs.runs_page(before=int_param(request.GET.get("before")))
    context = {
        "runs": page,
        "polling": any(run.is_active for run in page),
        "next_before": page[-1].pk if len(page) == selectors_runs.PAGE_SIZE else None,
        "versions": selectors_runs.versions_trainable(),
        "current": selectors_runs.current_model(),
        "trainer": settings.FLYWHEEL_TRAINER,
        "base_model": runs.base_model_dir(),
    }
    return render_page(request, "training/runs/runs.html", "runs-table", context)


@login_required
@require_POST
def run_start(request):
    require_role(request.user, ADMIN)
    version = (
        DatasetVersion.objects.select_related("dataset")
        .filter(pk=int_param(request.POST.get("version")))
        .first()
    )
    if version is None:
        messages.error(request, CHOOSE_VERSION)
        return redirect("training_runs:runs")
    try:
        run = runs.training_run_create(version=version, user=request.user)
    except TrainingError as error:
        messages.error(request, error.message)
        return redirect("training_runs:runs")
    messages.success(request, RUN_STARTED.format(pk=run.pk, version=version))
    return redirect("training_runs:run", pk=run.pk)


@login_required
def run_detail(request, pk: int):
    require_role(request.user, ADMIN)
    run = selectors_runs.run_get(pk=pk)
    if run is None:
        raise Http404(NO_SUCH_RUN.format(pk=pk))
    context = {
        "run": run,
        "chart": selectors_runs.loss_chart(run.loss_curve),
        "model": getattr(run, "model_version", None),
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
            "current": selectors_runs.current_model(),
            "events": selectors_runs.model_events(limit=30),
            "base_model": runs.base_model_dir(),
        },
    )


@login_required
def model_detail(request, pk: int):
    require_role(request.user, ADMIN)
    model = get_object_or_404(
        ModelVersion.objects.select_related("dataset_version__dataset", "baseline", "run"), pk=pk
    )
    current = selectors_runs.current_model()
    rows = [
        {
            "metric": name,
            "candidate": model.metrics.get(name),
            "baseline": model.baseline_metrics.get(name),
        }
        for name in trainer.GATE_METRICS
    ]
    return render(
        request,
        "training/runs/model.html",
        {
            "model": model,
            "current": current,
            "rows": rows,
            "events": selectors_runs.model_events(model=model),
            "can_decide": model.status == ModelVersion.Status.CANDIDATE,
        },
    )


@login_required
@require_POST
def model_promote(request, pk: int):
    require_role(request.user, ADMIN)
    model = get_object_or_404(ModelVersion, pk=pk)
    try:
        registry.model_version_promote(
            model=model, user=request.user, reason=request.POST.get("reason", "")
        )
    except TrainingError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, PROMOTED.format(model=model))
    return redirect("training_runs:model", pk=pk)


@login_required
@require_POST
def model_reject(request, pk: int):
    require_role(request.user, ADMIN)
    model = get_object_or_404(ModelVersion, pk=pk)
    try:
        registry.model_version_reject(
            model=model, user=request.user, reason=request.POST.get("reason", "")
        )
    except TrainingError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, REJECTED.format(model=model))
    return redirect("training_runs:model", pk=pk)
