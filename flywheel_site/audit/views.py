"""The erasure page (admins): the same service as `manage.py erase_user`."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from flywheel_site.access import ADMIN, role_required
from flywheel_site.audit.erasure import user_erase
from flywheel_site.audit.forms import EraseForm
from flywheel_site.audit.models import Erasure
from flywheel_site.audit.services import AuditError

PAGE = "audit/erase.html"


@role_required(ADMIN)
@require_http_methods(["GET", "POST"])
def erase(request: HttpRequest) -> HttpResponse:
    erasures = Erasure.objects.order_by("-created_at", "-pk")[:20]
    if request.method == "GET":
        return render(request, PAGE, {"erasures": erasures, "form": EraseForm(auto_id=False)})
    form = EraseForm(request.POST, auto_id=False)
    context = {"erasures": erasures, "form": form}
    if not form.is_valid():
        error = next(iter(form.errors.values()))[0]
        return render(request, PAGE, {**context, "error": error}, status=400)
    try:
        erasure = user_erase(raw_user_id=form.cleaned_data["user_id"], user=request.user)
    except AuditError as exc:
        return render(request, PAGE, {**context, "error": str(exc)}, status=400)
    messages.success(request, f"Recorded as erasure #{erasure.pk}.")
    return redirect("audit:erase")
