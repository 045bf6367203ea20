"""The erasure page and the global audit log (admins)."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from flywheel_site.access import ADMIN, recent_password_required, role_required
from flywheel_site.audit.erasure import user_erase
from flywheel_site.audit.forms import AuditLogForm, EraseForm
from flywheel_site.audit.log import audit_log_page, log_csv, log_jsonl
from flywheel_site.audit.models import Erasure
from flywheel_site.audit.services import AuditError
from flywheel_site.http import render_page

PAGE = "audit/erase.html"
LOG_PAGE = "audit/log.html"
EXPORTS = {
    "csv": (log_csv, "text/csv; charset=utf-8"),
    "jsonl": (log_jsonl, "application/jsonl; charset=utf-8"),
}


@role_required(ADMIN)
@recent_password_required
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


@role_required(ADMIN)
@require_GET
def log(request: HttpRequest) -> HttpResponse:
    form = AuditLogForm(request.GET)
    if not form.is_valid():
        return render_page(request, LOG_PAGE, "rows", {"form": form}, status=400)
    page, rows = audit_log_page(
        form.filters(), before=form.cleaned_data["before"], after=form.cleaned_data["after"]
    )
    context = {"form": form, "page": page, "rows": rows, "query": form.query()}
    return render_page(request, LOG_PAGE, "rows", context)


@role_required(ADMIN)
@require_GET
def log_export(request: HttpRequest, fmt: str) -> HttpResponse:
    form = AuditLogForm(request.GET)
    if not form.is_valid():
        return render(request, LOG_PAGE, {"form": form}, status=400)
    stream, content_type = EXPORTS[fmt]
    response = StreamingHttpResponse(stream(form.filters()), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="audit-log.{fmt}"'
    return response
