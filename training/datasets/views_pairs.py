"""Gold pair pages (admin role): one pair, its versions, and the two things an admin may do
to it. Quarantine asks first on its own page (what it touches, how many) and needs a reason;
a correction appends a pair that supersedes this one. Frozen versions never change."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from flywheel_site.access import ADMIN, require_role
from training.datasets import selectors, services
from training.datasets.forms import PairCorrectionForm, ReasonForm
from training.datasets.models import GoldPair, Quarantine
from training.datasets.views import report_rollback
from training.errors import TrainingError

NO_SUCH_PAIR = "No gold pair #{pk}."
PAIR_QUARANTINED = (
    "Quarantined gold pair #{pk}. Versions frozen from now on leave it out; "
    "versions already frozen are kept as they were."
)
PAIR_CORRECTED = "Gold pair #{new} corrects #{old}; the next freeze takes #{new} instead."


def _pair_or_404(pk: int) -> GoldPair:
    pair = selectors.gold_pair_get(pk=pk)
    if pair is None:
        raise Http404(NO_SUCH_PAIR.format(pk=pk))
    return pair


def _pair_page(request, pair: GoldPair, *, correction=None, status: int = 200):
    quarantine = selectors.pair_quarantine(pair=pair)
    return render(
        request,
        "training/gold_pair.html",
        {
            "pair": pair,
            "memberships": selectors.pair_versions(pair=pair),
            "quarantine": quarantine,
            "superseded_by": selectors.pair_correction(pair=pair),
            "correction": correction
            or PairCorrectionForm(initial={"chosen": pair.chosen, "rejected": pair.rejected}),
            "can_quarantine": quarantine is None,
        },
        status=status,
    )


@login_required
def gold_pair_detail(request, pk: int):
    require_role(request.user, ADMIN)
    return _pair_page(request, _pair_or_404(pk))


@login_required
def gold_pair_quarantine(request, pk: int):
    """GET: the confirmation (what the quarantine touches). POST: do it, with a reason."""
    require_role(request.user, ADMIN)
    pair = _pair_or_404(pk)
    form = ReasonForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                _, rollback = services.quarantine_apply(
                    kind=Quarantine.Kind.PAIR,
                    pair=pair,
                    reason=form.cleaned_data["reason"],
                    user=request.user,
                )
            except TrainingError as error:
                form.add_error(None, error.message)
                status = error.status
            else:
                messages.success(request, PAIR_QUARANTINED.format(pk=pair.pk))
                report_rollback(request, rollback)
                return redirect("datasets:pair", pk=pair.pk)
        else:
            status = 422
    return render(
        request,
        "training/gold_pair_quarantine.html",
        {
            "pair": pair,
            "form": form,
            "quarantine": selectors.pair_quarantine(pair=pair),
            **selectors.quarantine_consequences(
                quarantine=Quarantine(kind=Quarantine.Kind.PAIR, pair=pair)
            ),
        },
        status=status,
    )


@login_required
@require_POST
def gold_pair_correct(request, pk: int):
    require_role(request.user, ADMIN)
    pair = _pair_or_404(pk)
    form = PairCorrectionForm(request.POST)
    if not form.is_valid():
        return _pair_page(request, pair, correction=form, status=422)
    data = form.cleaned_data
    try:
        corrected = services.gold_pair_correct(
            pair=pair,
            chosen=data["chosen"],
            rejected=data["rejected"],
            user=request.user,
            reason=data["reason"],
        )
    except TrainingError as error:
        form.add_error(None, error.message)
        return _pair_page(request, pair, correction=form, status=error.status)
    messages.success(request, PAIR_CORRECTED.format(new=corrected.pk, old=pair.pk))
    return redirect("datasets:pair", pk=corrected.pk)
