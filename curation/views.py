from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from curation import policies, selectors, services
from curation.errors import CurationError
from curation.forms import PolicyForm
from curation.models import Candidate, CurationRun
from flywheel_site.access import CURATOR, require_role
from flywheel_site.http import int_param, render_page

SAMPLE_RATE_WARNING = (
    "The sample rate {rate:.1%} is outside the recommended 5-10% band: too low starves "
    "review, too high spends reviewer time on what the filters already decided."
)
RETRIED = "Sent {n} interaction(s) back to curation."
NOT_FAILED = "Interaction #{pk} is not failed: nothing to retry."
POLICY_SAVED = (
    "Saved as policy version {version}. New candidates are curated under it; run "
    "`manage.py recurate --policy {version}` to re-run existing ones."
)


@login_required
def runs(request):
    require_role(request.user, CURATOR)
    before = int_param(request.GET.get("before"))
    page = selectors.runs_page(before=before)
    context = {
        "runs": page,
        "polling": any(
            r.status in (CurationRun.Status.QUEUED, CurationRun.Status.RUNNING) for r in page
        ),
        "next_before": page[-1].pk if len(page) == selectors.PAGE_SIZE else None,
    }
    if request.htmx:
        # The 2 s poll redraws the table only: skip the counts over every candidate.
        return render(request, "curation/runs.html#runs-table", context)
    context.update(selectors.runs_overview())
    context["policy"] = policies.policy_current()
    return render(request, "curation/runs.html", context)


@login_required
@require_POST
def interaction_retry(request, pk: int | None = None):
    """Retry one failed interaction, or every failed one without `pk`."""
    require_role(request.user, CURATOR)
    if pk is not None and not selectors.interaction_exists(pk=pk):
        raise Http404
    retried = services.interaction_curation_retry(interaction_ids=None if pk is None else [pk])
    if retried or pk is None:
        messages.success(request, RETRIED.format(n=len(retried)))
    else:
        messages.info(request, NOT_FAILED.format(pk=pk))
    return redirect("curation:runs")


@login_required
def candidates(request):
    require_role(request.user, CURATOR)
    params = {
        "status": request.GET.get("status", ""),
        "failed_filter": request.GET.get("failed_filter", ""),
        "kind": request.GET.get("kind", ""),
    }
    page = selectors.candidates_page(**params, before=int_param(request.GET.get("before")))
    context = {
        "candidates": page,
        "params": params,
        "statuses": Candidate.Status.values,
        "next_before": page[-1].pk if len(page) == selectors.PAGE_SIZE else None,
    }
    return render_page(request, "curation/candidates.html", "list", context)


@login_required
def candidate_detail(request, pk: int):
    require_role(request.user, CURATOR)
    found = selectors.candidate_with_decisions(pk=pk)
    if found is None:
        raise Http404
    candidate, decisions = found
    return render(
        request, "curation/candidate.html", {"candidate": candidate, "decisions": decisions}
    )


@login_required
def policy(request):
    require_role(request.user, CURATOR)
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
    warnings = []
    if not 0.05 <= current.sample_rate <= 0.10:
        warnings.append(SAMPLE_RATE_WARNING.format(rate=current.sample_rate))
    versions = selectors.policy_versions()
    return render(
        request,
        "curation/policy.html",
        {"form": form, "current": current, "versions": versions, "warnings": warnings},
    )


@login_required
def policy_version(request, version: int):
    require_role(request.user, CURATOR)
    policy = selectors.policy_get(version=version)
    if policy is None:
        raise Http404
    fields = [(name, getattr(policy, name)) for name in policies.POLICY_FIELDS]
    return render(request, "curation/policy_version.html", {"policy": policy, "fields": fields})
