"""Training run and model registry pages (admin role). Thin: services and selectors do the
work. A run's page polls its own progress fragment every 2 s while the run is active."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from flywheel_site.access import ADMIN, require_role
from flywheel_site.http import int_param, render_page
from training import registry, runs, selectors_runs
from training.errors import TrainingError
from training.models import ModelVersion

RUN_STARTED = "Queued training run #{pk} on {version}."
PROMOTED = "{model} is now the current model."
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
        "current": selectors_runs.current_model(),
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
            "current": selectors_runs.current_model(),
            "events": selectors_runs.model_events(limit=30),
            "base_model": runs.base_model_dir(),
        },
    )


@login_required
def model_detail(request, pk: int):
    require_role(request.user, ADMIN)
    model = _model_or_404(pk)
    return render(
        request,
        "training/runs/model.html",
        {
            "model": model,
            "current": selectors_runs.current_model(),
            "rows": selectors_runs.gate_rows(model=model),
            "accounting": selectors_runs.eval_accounting(model.metrics),
            "events": selectors_runs.model_events(model=model),
            "can_decide": model.status == ModelVersion.Status.CANDIDATE,
        },
    )


@login_required
@require_POST
def model_decide(request, pk: int, decision: str):
    """Promote or reject a candidate (the URL names the decision); the service refuses a
    model that is no longer a candidate, or a rejection without a reason."""
    require_role(request.user, ADMIN)
    model = _model_or_404(pk)
    service, done = {
        "promote": (registry.model_version_promote, PROMOTED),
        "reject": (registry.model_version_reject, REJECTED),
    }[decision]
    try:
        service(model=model, user=request.user, reason=request.POST.get("reason", ""))
    except TrainingError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, done.format(model=model))
    return redirect("training_runs:model", pk=pk)
