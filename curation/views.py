from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from curation import actions, policies, selectors, services
from curation.errors import CurationError
from curation.forms import CandidateActionForm, CandidateSearchForm, PolicyForm
from curation.models import CandidateAction, CurationRun
from flywheel_site.access import CURATOR, role_required
from flywheel_site.http import int_param, render_page
from flywheel_site.text_diff import render_diff_html

RETRIED = "Sent {n} interaction(s) back to curation."
NOT_FAILED = "Interaction #{pk} is not failed: nothing to retry."
NEED_REASON = "Choose an action and give a reason: it is recorded with the action."
ACTED = "{kind}: done on candidate #{pk}."
ACTIVE = (CandidateAction.Status.QUEUED, CandidateAction.Status.RUNNING)
POLICY_SAVED = (
    "Saved as policy version {version}. New candidates are curated under it; run "
    "`manage.py recurate --policy {version}` to re-run existing ones."
)


@role_required(CURATOR)
def runs(request):
    page = selectors.runs_page(before=int_param(request.GET.get("before")))
    context = {
        "runs": page.rows,
        "rows": selectors.runs_collapsed(page.rows),
        "polling": any(
            r.status in (CurationRun.Status.QUEUED, CurationRun.Status.RUNNING) for r in page.rows
        ),
        "next_before": page.older,
    }
    if request.htmx:
        # The 2 s poll redraws the table only: skip the counts over every candidate.
        return render(request, "curation/runs.html#runs-table", context)
    context.update(selectors.runs_overview())
    context["policy"] = policies.policy_current()
    return render(request, "curation/runs.html", context)


@role_required(CURATOR)
@require_POST
def interaction_retry(request, pk: int | None = None):
    """Retry one failed interaction, or every failed one without `pk`."""
    if pk is not None:
        get_object_or_404(selectors.interactions(), pk=pk)
    retried = services.interaction_curation_retry(interaction_ids=None if pk is None else [pk])
    if retried or pk is None:
        messages.success(request, RETRIED.format(n=len(retried)))
    else:
        messages.info(request, NOT_FAILED.format(pk=pk))
    return redirect("curation:runs")


def _search_form(data) -> CandidateSearchForm:
    form = CandidateSearchForm(data)
    form.is_valid()
    return form


def _count_label(count: int, capped: bool) -> str:
    return f"{count:,}+" if capped else f"{count:,}"


def _query_string(form: CandidateSearchForm) -> str:
    """The filter part of the URL (no cursor), for links that keep the view."""
    return urlencode(_hidden(form))


@role_required(CURATOR)
def candidates(request):
    form = _search_form(request.GET)
    context = {"form": form, "query": _query_string(form)}
    if not request.htmx:
        # The select lists sit outside the list an HTMX request redraws.
        form.with_options(selectors.explorer_options())
    if not form.is_valid():
        return render_page(request, "curation/candidates.html", "list", context, status=400)
    filters = form.filters()
    count, capped = selectors.candidates_count(filters=filters)
    context.update(
        page=selectors.candidates_page(
            filters=filters,
            before=form.cleaned_data["before"],
            after=form.cleaned_data["after"],
        ),
        count=count,
        count_label=_count_label(count, capped),
        kinds=CandidateAction.Kind.choices,
    )
    return render_page(request, "curation/candidates.html", "list", context)


@role_required(CURATOR)
def candidates_bulk(request):
    """GET: the confirmation (how many it will act on, a reason); POST: the
    action itself, refused (409) when the set no longer has that count."""
    posted = request.method == "POST"
    data = request.POST if posted else request.GET
    form = _search_form(data)
    kind = data.get("action", "")
    if not form.is_valid() or kind not in CandidateAction.Kind.values:
        return render(request, "curation/bulk.html", {"form": form, "invalid": True}, status=400)
    filters = form.filters()
    action_form = CandidateActionForm(data if posted else None)
    status = 200
    max_id = selectors.candidates_max_id()
    if posted:
        status = 400
        if action_form.is_valid():
            max_id = action_form.cleaned_data["max_id"]
            try:
                done = actions.candidate_action_create(
                    user=request.user, filters=filters, **_action_args(action_form)
                )
            except CurationError as error:
                action_form.add_error(None, error.message)
                status = error.status
            else:
                return redirect("curation:action", pk=done.pk)
    count, capped = selectors.candidates_count(
        filters=filters, cap=settings.FLYWHEEL_BULK_ACTION_MAX, max_id=max_id
    )
    context = {
        "form": form,
        "query": _query_string(form),
        "hidden": _hidden(form),
        "kind": kind,
        "kind_label": CandidateAction.Kind(kind).label,
        "limit": settings.FLYWHEEL_BULK_ACTION_MAX,
        "max_id": max_id,
        "count": count,
        "count_label": _count_label(count, capped),
        "capped": capped,
        "action_form": action_form,
    }
    return render(request, "curation/bulk.html", context, status=status)


def _action_args(form: CandidateActionForm) -> dict:
    data = dict(form.cleaned_data)
    data["kind"] = data.pop("action")
    return data


def _hidden(form: CandidateSearchForm) -> list[tuple[str, str]]:
    return [
        (name, form.data[name])
        for name in form.fields
        if name not in ("before", "after") and form.data.get(name, "") != ""
    ]


@role_required(CURATOR)
def action(request, pk: int):
    found = get_object_or_404(selectors.candidate_actions(), pk=pk)
    context = {
        "action": found,
        "polling": found.status in ACTIVE,
        "outcome": selectors.queue_action_outcome(action=found),
    }
    return render_page(request, "curation/action.html", "progress", context)


@role_required(CURATOR)
@require_POST
def candidate_act(request, pk: int):
    """One of the three actions on one candidate, with its reason."""
    get_object_or_404(selectors.candidates(), pk=pk)
    form = CandidateActionForm({**request.POST.dict(), "max_id": pk, "expected": 1})
    if not form.is_valid():
        messages.error(request, NEED_REASON)
        return redirect("curation:candidate", pk=pk)
    try:
        done = actions.candidate_action_create(
            user=request.user, filters={"pk": pk}, **_action_args(form)
        )
    except CurationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, ACTED.format(kind=done.get_kind_display(), pk=pk))
    return redirect("curation:candidate", pk=pk)


@role_required(CURATOR)
def candidate_detail(request, pk: int):
    candidate = get_object_or_404(selectors.candidates(), pk=pk)
    decisions = selectors.candidate_decisions(candidate)
    diff = None
    if candidate.chosen is not None and candidate.rejected is not None:
        diff = render_diff_html(candidate.rejected, candidate.chosen)
    context = {
        "candidate": candidate,
        "decisions": decisions,
        "diff": diff,
        "duplicate_of": selectors.candidate_duplicate_of(decisions),
        "feedback": selectors.candidate_feedback(candidate=candidate),
        "actions": selectors.candidate_actions_recent(candidate_id=candidate.pk),
        "kinds": CandidateAction.Kind.choices,
        "action_form": CandidateActionForm(),
    }
    return render(request, "curation/candidate.html", context)


@role_required(CURATOR)
def policy(request):
    current = policies.policy_current()
    form = PolicyForm(request.POST or None, instance=current)
    if request.method == "POST" and form.is_valid():
        try:
            created = policies.policy_create(
                changes=form.changes(), user=request.user, note=form.cleaned_data["note"]
            )
        except CurationError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, POLICY_SAVED.format(version=created.version))
            return redirect("curation:policy")
    warnings = [w for w in [policies.sample_rate_warning(current)] if w]
    versions = selectors.policy_versions()
    return render(
        request,
        "curation/policy.html",
        {"form": form, "current": current, "versions": versions, "warnings": warnings},
    )


@role_required(CURATOR)
def policy_version(request, version: int):
    policy = get_object_or_404(selectors.policies(), version=version)
    fields = [(name, getattr(policy, name)) for name in policies.POLICY_FIELDS]
    return render(request, "curation/policy_version.html", {"policy": policy, "fields": fields})
