"""Dataset pages (admin role). Views are thin: forms in, services and selectors out.

Viewing or downloading a version never writes to the database: a past version is shown from
its manifest and membership, exactly as frozen.

Gold pair pages: one pair, its versions, and the two things an admin may do to it.
Quarantine asks first on its own page (what it touches, how many) and needs a reason; a
correction appends a pair that supersedes this one. Frozen versions never change."""

import json

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from flywheel_site.access import ADMIN, role_required
from flywheel_site.http import int_param, render_page, require_post
from training.datasets import export, selectors, serve, services
from training.datasets.forms import (
    DatasetForm,
    PairCorrectionForm,
    QuarantineForm,
    ReasonForm,
    VersionQuarantineForm,
)
from training.datasets.models import DatasetVersion, GoldPair, Quarantine
from training.datasets.pii_scan import ExportPiiFound
from training.errors import TrainingError

DATASET_CREATED = "Created dataset {name}."
FREEZE_UNCONFIRMED = (
    "Nothing was frozen: tick the box to confirm that the new version's membership is fixed "
    "forever."
)
VERSION_QUARANTINED = (
    "Quarantined {version}. The pairs it added are excluded from every later version."
)
QUARANTINE_CREATED = (
    "Recorded quarantine #{pk}: {kind}. Later versions exclude the pairs it covers."
)
QUARANTINE_AFFECTS = "Versions holding affected pairs: {versions}."
MODELS_ROLLED_BACK = "Rolled back {count} model(s) trained on them: {models}."
MODEL_RESTORED = "{previous} was the current model; {restored} is current again."
MODEL_RESTORED_BASE = "{previous} was the current model; the base model is current again."


def _redirect(request, url: str):
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def report_rollback(request, rollback) -> None:
    if not rollback.rolled_back:
        return
    messages.warning(
        request,
        MODELS_ROLLED_BACK.format(
            count=len(rollback.rolled_back), models=", ".join(m.name for m in rollback.rolled_back)
        ),
    )
    if rollback.previous_current is not None:
        if rollback.restored is not None:
            text = MODEL_RESTORED.format(
                previous=rollback.previous_current.name, restored=rollback.restored.name
            )
        else:
            text = MODEL_RESTORED_BASE.format(previous=rollback.previous_current.name)
        messages.warning(request, text)


def _version_or_404(name: str, number: int) -> DatasetVersion:
    return get_object_or_404(selectors.versions_published(), dataset__name=name, number=number)


@role_required(ADMIN)
def datasets(request):
    form = DatasetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            dataset = services.dataset_create(
                name=data["name"],
                user=request.user,
                kind=data["kind"],
                description=data["description"],
                formats=data["formats"],
                lag_days=data["lag_days"],
                eval_fraction=data["eval_fraction"],
                near_dup_threshold=data["near_dup_threshold"],
                train_threshold=data["train_threshold"],
            )
        except TrainingError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, DATASET_CREATED.format(name=dataset.name))
            return redirect("datasets:dataset", name=dataset.name)
    return render(
        request,
        "training/datasets.html",
        {
            "rows": selectors.datasets_overview(),
            "form": form,
            "quarantines": selectors.quarantines_recent(limit=10),
            "pending_gold": selectors.outcomes_pending_gold_count(),
        },
        status=422 if form.errors else 200,
    )


@role_required(ADMIN)
def dataset_detail(request, name: str):
    dataset = get_object_or_404(selectors.datasets(), name=name)
    latest = selectors.latest_frozen(dataset=dataset)
    new_gold = selectors.gold_new_count(dataset=dataset)
    pending_gold = selectors.outcomes_pending_gold_count()
    return render(
        request,
        "training/dataset.html",
        {
            "dataset": dataset,
            "versions": selectors.dataset_versions(dataset=dataset),
            "next_number": (latest.number + 1) if latest else 1,
            "new_gold": new_gold,
            "new_gold_unlagged": selectors.gold_new_count(dataset=dataset, lagged=False),
            "pending_gold": pending_gold,
            "freeze_blocker": selectors.freeze_blocker(
                dataset=dataset, new_gold=new_gold, pending_gold=pending_gold
            ),
        },
    )


@role_required(ADMIN)
@require_POST
def dataset_freeze(request, name: str):
    dataset = get_object_or_404(selectors.datasets(), name=name)
    if request.POST.get("confirm") != "on":
        # A freeze cannot be undone: it needs the box ticked, not only a click.
        messages.error(request, FREEZE_UNCONFIRMED)
        return _redirect(request, reverse("datasets:dataset", args=[name]))
    number = int_param(request.POST.get("number"))
    version, created = services.dataset_version_freeze(
        dataset=dataset, user=request.user, number=number
    )
    if created:
        counts = version.manifest["counts"]
        messages.success(
            request,
            services.FREEZE_CREATED.format(
                version=version, train=counts["train"], eval=counts["eval"]
            ),
        )
    else:
        messages.info(request, services.FREEZE_UNCHANGED.format(version=version))
    return _redirect(request, reverse("datasets:version", args=[name, version.number]))


def _version_page(request, version: DatasetVersion, *, form=None, status: int = 200):
    files = export.version_files(version=version)
    can_quarantine = version.status == DatasetVersion.Status.FROZEN
    return render(
        request,
        "training/version.html",
        {
            "version": version,
            "dataset": version.dataset,
            "counts": version.manifest.get("counts", {}),
            "charts": selectors.composition(version=version),
            "files": files,
            "manifest_json": json.dumps(version.manifest, indent=2, sort_keys=True),
            "quarantine": selectors.version_quarantine(version=version),
            "eval_shortfall": selectors.eval_shortfall(version=version),
            "quarantine_form": form or VersionQuarantineForm(),
            "can_quarantine": can_quarantine,
            "added_count": (
                selectors.version_added_pairs(version=version).count() if can_quarantine else 0
            ),
            "trained_models": (
                selectors.models_trained_on(version=version) if can_quarantine else []
            ),
        },
        status=status,
    )


@role_required(ADMIN)
def version_detail(request, name: str, number: int):
    return _version_page(request, _version_or_404(name, number))


@role_required(ADMIN)
def version_diff(request, name: str, number: int):
    """The diff against the previous version: loaded by HTMX after the page, since it reads
    two memberships; a plain link opens it as its own page."""
    version = _version_or_404(name, number)
    context = {"version": version, "diff": selectors.version_diff(version=version)}
    return render_page(request, "training/diff.html", "diff", context)


@role_required(ADMIN)
def version_download(request, name: str, number: int, file: str):
    version = _version_or_404(name, number)
    try:
        download = serve.dataset_version_download(version=version, name=file)
    except FileNotFoundError as error:
        raise Http404(str(error)) from error
    except ExportPiiFound as error:
        return HttpResponse(str(error), status=409, content_type="text/plain; charset=utf-8")
    # Streamed in blocks, from this node's disk or from the database; never built in memory.
    return serve.download_response(
        download, name=file, attachment_name=f"{name}-v{number}-{file.replace('/', '-')}"
    )


@role_required(ADMIN)
@require_post("datasets:version", "name", "number")
def version_quarantine(request, name: str, number: int):
    version = _version_or_404(name, number)
    form = VersionQuarantineForm(request.POST)
    if not form.is_valid():
        # Nothing happens without a reason: the page again, the question still open.
        return _version_page(request, version, form=form, status=422)
    try:
        _, rollback = services.quarantine_apply(
            kind=Quarantine.Kind.DATASET_VERSION,
            dataset_version=version,
            reason=form.cleaned_data["reason"],
            user=request.user,
        )
    except TrainingError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, VERSION_QUARANTINED.format(version=version))
        report_rollback(request, rollback)
    return _redirect(request, reverse("datasets:version", args=[name, number]))


@role_required(ADMIN)
def quarantines(request):
    """A window, source or policy quarantine in two steps: the form, then what it would
    cover (pairs, versions, models rolled back) to confirm; only the confirmed POST
    (`confirm=1`, the same fields) records it."""
    form = QuarantineForm(request.POST or None)
    preview = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        fields = {
            "kind": data["kind"],
            "reason": data["reason"],
            "source": data["source"],
            "policy": data["policy"],
            "window_start": data["window_start"],
            "window_end": data["window_end"],
        }
        try:
            if request.POST.get("confirm") != "1":
                proposed = services.quarantine_preview(user=request.user, **fields)
                preview = {
                    "quarantine": proposed,
                    **selectors.quarantine_consequences(quarantine=proposed),
                }
            else:
                quarantine, rollback = services.quarantine_apply(user=request.user, **fields)
        except TrainingError as error:
            form.add_error(None, error.message)
        else:
            if preview is None:
                messages.success(
                    request,
                    QUARANTINE_CREATED.format(pk=quarantine.pk, kind=quarantine.get_kind_display()),
                )
                affected = list(selectors.versions_affected(quarantine=quarantine))
                if affected:
                    messages.warning(
                        request,
                        QUARANTINE_AFFECTS.format(versions=", ".join(str(v) for v in affected)),
                    )
                report_rollback(request, rollback)
                return redirect("datasets:quarantines")
    return render(
        request,
        "training/quarantines.html",
        {"form": form, "preview": preview, "quarantines": selectors.quarantines_recent()},
    )


# --- gold pairs ---------------------------------------------------------------------

PAIR_QUARANTINED = (
    "Quarantined gold pair #{pk}. Versions frozen from now on leave it out; "
    "versions already frozen are kept as they were."
)
PAIR_CORRECTED = "Gold pair #{new} corrects #{old}; the next freeze takes #{new} instead."


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


@role_required(ADMIN)
def gold_pair_detail(request, pk: int):
    return _pair_page(request, get_object_or_404(selectors.gold_pairs(), pk=pk))


@role_required(ADMIN)
def gold_pair_quarantine(request, pk: int):
    """GET: the confirmation (what the quarantine touches). POST: do it, with a reason."""
    pair = get_object_or_404(selectors.gold_pairs(), pk=pk)
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


@role_required(ADMIN)
@require_post("datasets:pair", "pk")
def gold_pair_correct(request, pk: int):
    pair = get_object_or_404(selectors.gold_pairs(), pk=pk)
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
