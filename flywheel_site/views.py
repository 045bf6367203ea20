import ipaddress

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from curation.models import TokenScope
from curation.services import MissingScope
from flywheel_site import login
from flywheel_site import redis as fw_redis
from flywheel_site.access import ANNOTATOR, CURATOR, has_role, role_required
from flywheel_site.api_auth import RateLimited, TokenAuth
from flywheel_site.api_errors import error_response
from flywheel_site.prometheus import scrape_registry
from training.metrics.prometheus import FlywheelCollector
from training.metrics.views import dashboard

METRICS_SCOPE_NEEDED = (
    "a token with the metrics scope is needed (Authorization: Bearer ...), or a client "
    "address in FLYWHEEL_METRICS_ALLOW_CIDRS"
)
METRICS_ALL_SOURCES = (
    "/metrics counts every source: the token also needs the all_sources scope "
    "(GET /api/v1/metrics reads one source's figures with the metrics scope alone)"
)
_metrics_auth = TokenAuth(TokenScope.METRICS)


@role_required(ANNOTATOR)
def home(request):
    if has_role(request.user, CURATOR):
        # Curators and admins land on the flywheel dashboard; annotators on their queue.
        return dashboard(request)
    return redirect("review:home")


def _database_ok() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # any failure means "down"; report its type only
        return False, type(error).__name__
    return True, "ok"


@require_GET
def healthz(request):
    db_ok, db_detail = _database_ok()
    redis_ok, redis_detail = fw_redis.ping()
    checks = {
        "database": {"ok": db_ok, "detail": db_detail},
        "redis": {"ok": redis_ok, "detail": redis_detail},
    }
    down = [name for name, check in checks.items() if not check["ok"]]
    warnings = []
    if db_ok:
        from curation.selectors import toxicity_warnings

        warnings = toxicity_warnings()
    # The offline classifier deciding is a choice `make run` makes on purpose: a warning to
    # read, not a service in trouble. Candidates held for want of a model are.
    from curation.toxicity import TOXICITY_FALLBACK_WARNING

    troubled = down or [w for w in warnings if w != TOXICITY_FALLBACK_WARNING]
    body = {
        "status": "degraded" if troubled else "ok",
        "down": down,
        "checks": checks,
        "warnings": warnings,
    }
    return JsonResponse(body, status=200 if db_ok else 503)


@require_GET
def favicon(request):
    # Browsers ask for /favicon.ico whatever the page links to: point them at the SVG.
    return redirect(static("favicon.svg"), permanent=True)


REAUTH_FAILED = "That is not your password."


@login_required
def reauth(request):
    """Asks a logged-in person for their password again before a destructive admin action
    (flywheel_site.middleware.AdminOnlyMiddleware sends them here). Failures count towards
    the django-axes lockout like any log-in."""
    target = request.POST.get("next") or request.GET.get("next") or "/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/"
    error = ""
    if request.method == "POST":
        user = authenticate(
            request, username=request.user.get_username(), password=request.POST.get("password", "")
        )
        if user is not None and user.pk == request.user.pk:
            login.reauthenticated(request.session)
            return redirect(target)
        error = REAUTH_FAILED
    return render(
        request, "registration/reauth.html", {"next": target, "error": error},
        status=422 if error else 200,
    )  # fmt: skip


def _metrics_refusal(request) -> JsonResponse | None:
    """None when the scraper may read: an allowed address, or a token with both scopes."""
    try:
        address = ipaddress.ip_address(login.client_ip(request))
    except ValueError:
        address = None
    if address is not None and any(
        address in net
        for net in settings.FLYWHEEL_METRICS_ALLOW_CIDRS
        if address.version == net.version
    ):
        return None
    try:
        token = _metrics_auth(request)
    except RateLimited as limited:
        refusal = error_response(429, "too many requests")
        refusal["Retry-After"] = str(limited.retry_after)
        return refusal
    except MissingScope as lacking:
        return error_response(403, lacking.message)
    if token is None:
        refusal = error_response(401, METRICS_SCOPE_NEEDED)
        refusal["WWW-Authenticate"] = "Bearer"
        return refusal
    if not token.has_scope(TokenScope.ALL_SOURCES):
        return error_response(403, METRICS_ALL_SOURCES)
    return None


@require_GET
def prometheus_metrics(request):
    """Prometheus text format: this process's (or every gunicorn worker's) counters and
    the figures `training.metrics.prometheus` reads at scrape time."""
    refusal = _metrics_refusal(request)
    if refusal is not None:
        return refusal
    registry = scrape_registry(FlywheelCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
