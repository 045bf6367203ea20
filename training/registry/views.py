"""An admin's hand on a canary experiment (stop, extend, decide) and the rollback offered by
a monitor alert. POST only, a reason required; the services record it in the model's
history and refuse an experiment that is no longer running."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from flywheel_site.access import ADMIN, role_required
from training.errors import TrainingError
from training.registry import experiments
from training.registry.forms import ExperimentActionForm, ReasonForm
from training.registry.models import Experiment, MonitorAlert

DONE = {
    "stop": "Experiment #{pk} stopped; the control keeps serving.",
    "extend": "Experiment #{pk} extended.",
    "complete": "Experiment #{pk} completed by hand; the canary is the current model.",
    "roll_back": "Experiment #{pk} rolled back by hand; the control serves every key.",
}
ROLLED_BACK = "{model} rolled back; {restored} is the current model again."


@role_required(ADMIN)
@require_POST
def experiment_act(request, pk: int, action: str):
    experiment = get_object_or_404(Experiment.objects.select_related("canary"), pk=pk)
    form = ExperimentActionForm(request.POST)
    if not form.is_valid():
        messages.error(request, next(e[0] for e in form.errors.values()))
        return redirect("runs:model", pk=experiment.canary_id)
    reason = form.cleaned_data["reason"]
    if action == "decide":
        action = form.cleaned_data["decision"]
    try:
        if action == "stop":
            experiments.experiment_stop(experiment=experiment, user=request.user, reason=reason)
        elif action == "extend":
            hours = form.cleaned_data["hours"] or 0
            experiments.experiment_extend(
                experiment=experiment, user=request.user, reason=reason, seconds=hours * 3600
            )
        else:
            experiments.experiment_decide(
                experiment=experiment, user=request.user, reason=reason, decision=action
            )
    except TrainingError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, DONE[action].format(pk=pk))
    return redirect("runs:model", pk=experiment.canary_id)


@role_required(ADMIN)
@require_POST
def alert_roll_back(request, pk: int):
    alert = get_object_or_404(MonitorAlert.objects.select_related("model"), pk=pk)
    form = ReasonForm(request.POST)
    if not form.is_valid():
        messages.error(request, next(e[0] for e in form.errors.values()))
        return redirect("runs:model", pk=alert.model_id)
    try:
        restored = experiments.model_version_roll_back(
            alert=alert, user=request.user, reason=form.cleaned_data["reason"]
        )
    except TrainingError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            ROLLED_BACK.format(model=alert.model, restored=restored or "the base model"),
        )
    return redirect("runs:model", pk=alert.model_id)
