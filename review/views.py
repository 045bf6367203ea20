"""Review pages. Each view checks the role, calls one service or selector and
renders: the full page, or its fragment for HTMX (``request.htmx``). POSTs that
change something redirect when they did not come from HTMX, so the screens
work with JavaScript off; refused writes re-render with 409 (lease) or 422
(form) and the service's message."""

import logging

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect, push_url

from flywheel_site.access import ANNOTATOR, CURATOR, has_role, role_required
from flywheel_site.http import int_param, render_page, require_post
from review import errors, presenters, selectors, services, thresholds
from review import stats as review_stats
from review.forms import CalibrationApplyForm, DecisionForm, GuidelineForm, QueueForm
from review.guidelines import guideline_update
from review.models import Decision, Guideline, Review, ReviewItem

QUEUE_EMPTY = "Nothing left for you to review right now. Thank you!"
ADJUDICATION_EMPTY = "No items are waiting for adjudication."
SAVED = "Review saved."
SKIPPED = "Item skipped: it goes to someone else."
ADJUDICATED = "Outcome saved. It is final."
GUIDELINES_SAVED = "Guidelines saved as version {version}."
CALIBRATION_APPLIED = "Saved as policy version {version}. {note}"
QUEUE_SAVED = "Queue saved: the next items come from it."
ESCALATED = "Item skipped. Several people have skipped it, so it goes to a curator."
SCREEN = "review/item.html"
UNSHOWABLE = "That item could not be shown, so it went to a curator. Here is the next one."
UNSHOWABLE_REASON = "Its review screen could not be shown ({error})."
logger = logging.getLogger(__name__)


def _screen(request, context: dict, *, status: int = 200):
    return render_page(request, SCREEN, "screen", context, status=status)


def _unshowable(request, item: ReviewItem, error: Exception):
    """The item's screen failed: log it, send the item to a curator with the reason, and
    give the annotator the next one instead of an error page they cannot leave."""
    logger.exception("Review item %s could not be shown", item.pk)
    services.item_escalate(item=item, reason=UNSHOWABLE_REASON.format(error=type(error).__name__))
    return _show(request, services.item_claim_next(user=request.user), notice=UNSHOWABLE)


def _show(request, item: ReviewItem | None, *, notice: str = "", empty: str = QUEUE_EMPTY):
    """After a claim: the next item's screen (HTMX) or a redirect to it."""
    if item is None:
        if request.htmx:
            response = _screen(request, {"mode": "empty", "notice": notice, "empty": empty})
            return push_url(response, reverse("review:home"))
        if notice:
            messages.success(request, notice)
        messages.info(request, empty)
        return redirect("review:home")
    if request.htmx:
        try:
            context = presenters.screen(item=item, user=request.user)
            context["notice"] = notice
            response = _screen(request, context)
        except Exception as error:
            return _unshowable(request, item, error)
        return push_url(response, reverse("review:item", args=[item.pk]))
    if notice:
        messages.success(request, notice)
    return redirect("review:item", pk=item.pk)


def _refused(request, item: ReviewItem, error: errors.ReviewError, *, posted=None):
    context = presenters.screen(item=item, user=request.user, posted=posted, error=error.message)
    if context["mode"] != "lost" and error.status == 409:
        context["mode"] = "lost"
    context["error_at"] = presenters.error_at(
        mode=context["mode"], error=error.message, posted=posted
    )
    return _screen(request, context, status=error.status)


def _decide(request, pk: int, write, *, mode: services.Mode, notice: str, empty: str):
    """Submit and adjudicate: parse the decision form, call ``write(item, form)``
    (one service), then move on to the next item in ``mode``; a refusal re-renders
    the screen with what was typed."""
    obj = get_object_or_404(ReviewItem, pk=pk)
    form = DecisionForm(request.POST)
    try:
        if not form.is_valid():
            raise errors.InvalidReview(form.first_error())
        write(obj, form)
    except errors.ReviewError as error:
        return _refused(request, obj, error, posted=form.posted())
    item = services.item_claim_next(user=request.user, mode=mode)
    return _show(request, item, notice=notice, empty=empty)


# --- queue --------------------------------------------------------------------


@role_required(ANNOTATOR)
@require_GET
def home(request):
    return render_page(request, "review/home.html", "summary", _home_context(request.user))


def _home_context(user) -> dict:
    context = selectors.home(user=user)
    context["progress_strip"] = selectors.queue_progress(user=user)
    picker = selectors.queue_picker(user=user)
    context.update(picker, queue_form=QueueForm.shown(**picker))
    return context


@role_required(ANNOTATOR)
@require_post("review:home")
def queue(request):
    """Save the queue picker: the next claims serve from this queue."""
    form = QueueForm(request.POST)
    try:
        if not form.is_valid():
            raise errors.InvalidReview(services.UNKNOWN_QUEUE)
        services.queue_choose(
            user=request.user,
            kind=form.cleaned_data["kind"],
            task_type=form.cleaned_data["task_type"],
            source_id=form.cleaned_data["source"],
        )
    except errors.ReviewError as error:
        context = _home_context(request.user)
        context["queue_error"] = error.message
        return render(request, "review/home.html", context, status=error.status)
    messages.success(request, QUEUE_SAVED)
    return redirect("review:home")


@role_required(ANNOTATOR)
@require_POST
def claim_next(request):
    return _show(request, services.item_claim_next(user=request.user))


@role_required(ANNOTATOR)
@require_GET
def item(request, pk: int):
    obj = get_object_or_404(ReviewItem, pk=pk)
    try:
        context = presenters.screen(item=obj, user=request.user)
        if context["mode"] == "lost":
            context["error"] = services.LEASE_LOST
            return _screen(request, context, status=409)
        return _screen(request, context)
    except Exception as error:
        return _unshowable(request, obj, error)


@role_required(ANNOTATOR)
@require_post("review:item", "pk")
def submit(request, pk: int):

    def write(item, form):
        services.review_submit(item=item, reviewer=request.user, **form.rubric(), **form.verdict())

    return _decide(request, pk, write, mode="review", notice=SAVED, empty=QUEUE_EMPTY)


@role_required(ANNOTATOR)
@require_post("review:item", "pk")
def skip(request, pk: int):
    obj = get_object_or_404(ReviewItem, pk=pk)
    try:
        escalated = services.item_skip(item=obj, user=request.user)
    except errors.ReviewError as error:
        return _refused(request, obj, error)
    notice = ESCALATED if escalated else SKIPPED
    return _show(request, services.item_claim_next(user=request.user), notice=notice)


@role_required(ANNOTATOR)
@require_POST
def renew(request, pk: int):
    obj = get_object_or_404(ReviewItem, pk=pk)
    try:
        renewed = services.lease_renew(item=obj, user=request.user)
    except errors.ReviewError as error:
        if request.htmx:
            return render(
                request, f"{SCREEN}#lease-lost", {"error": error.message}, status=error.status
            )
        messages.error(request, error.message)
        return redirect("review:item", pk=obj.pk)
    if request.htmx:
        return render(
            request, f"{SCREEN}#lease-status", {"lease_expires_at": renewed.lease_expires_at}
        )
    return redirect("review:item", pk=obj.pk)


@role_required(ANNOTATOR)
@require_post("review:item", "pk")
def diff(request, pk: int):
    """The three-way diff of the reviewer's edit so far; changes nothing."""
    obj = get_object_or_404(ReviewItem, pk=pk)
    form = DecisionForm(request.POST)
    form.is_valid()  # only to show the edit; nothing is written
    text = form.cleaned_data.get("final_text") or ""
    if request.htmx:
        context = presenters.screen(item=obj, user=request.user, edited_text=text)
        if context["mode"] == "lost":
            return render(
                request, f"{SCREEN}#lease-lost", {"error": services.LEASE_LOST}, status=409
            )
        return render(request, f"{SCREEN}#three-way", context)
    posted = form.posted()
    context = presenters.screen(item=obj, user=request.user, posted=posted, edited_text=text)
    context["editing"] = True
    return render(request, SCREEN, context, status=409 if context["mode"] == "lost" else 200)


# --- adjudication -------------------------------------------------------------


@role_required(CURATOR)
@require_GET
def adjudication(request):
    return render_page(request, "review/adjudication.html", "list", selectors.adjudication_list())


@role_required(CURATOR)
@require_POST
def adjudication_next(request):
    item = services.item_claim_next(user=request.user, mode="adjudication")
    return _show(request, item, empty=ADJUDICATION_EMPTY)


@role_required(CURATOR)
@require_post("review:item", "pk")
def claim(request, pk: int):
    obj = get_object_or_404(ReviewItem, pk=pk)
    try:
        claimed = services.item_claim(item=obj, user=request.user)
    except errors.ReviewError as error:
        return _refused(request, obj, error)
    return _show(request, claimed)


@role_required(CURATOR)
@require_post("review:item", "pk")
def adjudicate(request, pk: int):

    def write(item, form):
        services.outcome_adjudicate(item=item, curator=request.user, **form.verdict())

    return _decide(
        request, pk, write, mode="adjudication", notice=ADJUDICATED, empty=ADJUDICATION_EMPTY
    )


# --- statistics, history ------------------------------------------------------


@role_required(CURATOR)
@require_GET
def stats(request):
    days = int_param(request.GET.get("days"))
    if days not in review_stats.STATS_WINDOWS:
        days = review_stats.STATS_WINDOWS[0]
    return render_page(request, "review/stats.html", "stats-body", review_stats.stats(days=days))


@role_required(ANNOTATOR)
@require_GET
def mine(request):
    decision = request.GET.get("decision", "")
    if decision not in Decision.values:
        decision = ""
    before = int_param(request.GET.get("before"))
    page = selectors.my_reviews(user=request.user, before=before, decision=decision)
    context = {
        "reviews": page.rows,
        "before": before,
        "rows": presenters.my_review_rows(page.rows),
        "decision": decision,
        "decisions": presenters.DECISION_LABELS,
        "curator": has_role(request.user, CURATOR),
        "next_before": page.older,
    }
    return render_page(request, "review/mine.html", "list", context)


@role_required(ANNOTATOR)
@require_GET
def review_detail(request, pk: int):
    """One review: its author or a curator; anyone else gets a 404, so an
    annotator cannot even learn which reviews exist."""
    review = get_object_or_404(
        Review.objects.select_related("item__candidate__interaction", "reviewer"), pk=pk
    )
    if review.reviewer_id != request.user.pk and not has_role(request.user, CURATOR):
        raise Http404
    return render_page(
        request, "review/review_detail.html", "detail", presenters.review_detail(review)
    )


# --- guidelines ---------------------------------------------------------------


@role_required(ANNOTATOR)
@require_GET
def guidelines(request):
    version = int_param(request.GET.get("v"))
    current = selectors.guideline_current()
    shown = current
    if version is not None:
        shown = get_object_or_404(Guideline, version=version)
    context = {
        "guideline": shown,
        "html": presenters.guideline_html(shown),
        "is_current": shown is not None and current is not None and shown.pk == current.pk,
        "versions": selectors.guideline_versions(),
    }
    return render_page(request, "review/guidelines.html", "guideline", context)


@role_required(CURATOR)
def guidelines_edit(request):
    current = selectors.guideline_current()
    form = GuidelineForm(initial={"body": current.body if current else ""})
    error = ""
    if request.method == "POST":
        form = GuidelineForm(request.POST)
        try:
            if not form.is_valid():
                raise errors.InvalidReview(form.first_error())
            saved = guideline_update(user=request.user, **form.cleaned_data)
        except errors.ReviewError as refused:
            error = refused.message
        else:
            messages.success(request, GUIDELINES_SAVED.format(version=saved.version))
            if request.htmx:
                return HttpResponseClientRedirect(reverse("review:guidelines"))
            return redirect("review:guidelines")
    context = {"form": form, "error": error, "current": current}
    status = 422 if error else 200
    return render_page(request, "review/guidelines_edit.html", "form", context, status=status)


@role_required(CURATOR)
@require_post("review:guidelines_edit")
def guidelines_preview(request):
    form = GuidelineForm(request.POST)
    if not form.is_valid():
        context = {"form": form, "error": form.first_error(), "current": None}
        return render_page(request, "review/guidelines_edit.html", "form", context, status=422)
    context = {"preview": presenters.render_markdown(form.cleaned_data["body"]), "form": form}
    if request.htmx:
        return render(request, "review/guidelines_edit.html#preview", context)
    context["current"] = selectors.guideline_current()
    return render(request, "review/guidelines_edit.html", context)


# --- calibration --------------------------------------------------------------


@role_required(CURATOR)
@require_GET
def calibration(request):
    return render(request, "review/calibration.html", _calibration_context())


def _calibration_context() -> dict:
    # One form per suggestion shares these fields: no ids, each input sits in its label.
    return {**presenters.calibration_page(), "apply_form": CalibrationApplyForm(auto_id=False)}


@role_required(CURATOR)
@require_post("review:calibration")
def calibration_apply(request):
    """A suggested threshold becomes the next policy version (with a reason)."""
    form = CalibrationApplyForm(request.POST)
    try:
        if not form.is_valid():
            raise errors.InvalidReview(form.first_error())
        policy = thresholds.policy_threshold_apply(
            filter_name=form.cleaned_data["filter"],
            threshold=form.cleaned_data["threshold"],
            user=request.user,
            reason=form.cleaned_data["reason"],
        )
    except errors.ReviewError as error:
        context = _calibration_context()
        context["error"] = error.message
        context["error_filter"] = form.data.get("filter", "")
        return render(request, "review/calibration.html", context, status=error.status)
    messages.success(request, CALIBRATION_APPLIED.format(version=policy.version, note=policy.note))
    return redirect("review:calibration")


@role_required(CURATOR)
@require_GET
def item_by_candidate(request, candidate_pk: int):
    """Curation links a candidate to its review item by the candidate's id
    (curation cannot query review): resolve it here."""
    obj = get_object_or_404(ReviewItem.objects.only("pk"), candidate_id=candidate_pk)
    return redirect("review:item", pk=obj.pk)
