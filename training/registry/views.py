"""An admin's hand on a canary experiment (stop, extend, decide) and the rollback offered by
a monitor alert. POST only, a reason required; the services record it in the model's
history and refuse an experiment that is no longer running."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from flywheel_site.access import ADMIN, require_role
from flywheel_site.http import int_param
from training.errors import TrainingError
from training.registry import experiments
from training.registry.models import Experiment, MonitorAlert

NO_SUCH_EXPERIMENT = "No experiment #{pk}."
NO_SUCH_ALERT = "No alert #{pk}."
DONE = {
    "stop": "Experiment #{pk} stopped; the control keeps serving.",
    "extend": "Experiment #{pk} extended.",
    "complete": "Experiment #{pk} completed by hand; the canary is the current model.",
    "roll_back": "Experiment #{pk} rolled back by hand; the control serves every key.",
}
ROLLED_BACK = "{model} rolled back; {restored} is the current model again."


@login_required
@require_POST
def experiment_act(request, pk: int, action: str):
    require_role(request.user, ADMIN)
    experiment = Experiment.objects.filter(pk=pk).select_related("canary").first()
    if experiment is None:
        raise Http404(NO_SUCH_EXPERIMENT.format(pk=pk))
    reason = request.POST.get("reason", "")
    if action == "decide":
        action = request.POST.get("decision", "")
    try:
        if action == "stop":
            experiments.experiment_stop(experiment=experiment, user=request.user, reason=reason)
        elif action == "extend":
            hours = int_param(request.POST.get("hours")) or 0
            experiments.experiment_extend(
                experiment=experiment,
                user=request.user,
                reason=reason,
                seconds=hours * 3600 if 0 < hours <= 24 * 366 else 0,
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


@login_required
@require_POST
def alert_roll_back(request, pk: int):
    require_role(request.user, ADMIN)
    alert = MonitorAlert.objects.filter(pk=pk).select_related("model").first()
    if alert is None:
        raise Http404(NO_SUCH_ALERT.format(pk=pk))
    try:
        restored = experiments.model_version_roll_back(
            alert=alert, user=request.user, reason=request.POST.get("reason", "")
        )
    except TrainingError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            ROLLED_BACK.format(model=alert.model, restored=restored or "the base model"),
        )
    return redirect("runs:model", pk=alert.model_id)
