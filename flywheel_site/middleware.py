import threading
from http import HTTPStatus
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ImproperlyConfigured
from django.http import JsonResponse
from django.urls import Resolver404, resolve
from django.utils.http import url_has_allowed_host_and_scheme
from django_htmx.http import HttpResponseClientRedirect

from flywheel_site import login
from flywheel_site.access import ADMIN, require_role
from flywheel_site.api_errors import INTERNAL, error_body, error_response

API_PREFIX = "/api/"
BODY_TOO_LARGE = "request body exceeds {limit} bytes"
# An over-limit body is read and thrown away up to this size before the 413 goes out: a client
# that is still sending when the server closes gets a reset (Python's urllib and requests
# report a broken pipe) instead of the answer. Beyond this a client is cut off unanswered,
# so one request cannot keep a worker reading forever.
DISCARD_MAX_BYTES = 64 * 1024 * 1024
DISCARD_CHUNK = 64 * 1024


def _discard_body(request, length: int) -> None:
    remaining = min(length, DISCARD_MAX_BYTES)
    while remaining > 0:
        chunk = request.read(min(remaining, DISCARD_CHUNK))
        if not chunk:
            return
        remaining -= len(chunk)


class ApiBodyLimitMiddleware:
    """Refuse oversized API bodies with a JSON 413 before anything parses them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(API_PREFIX):
            limit = settings.FLYWHEEL_INGEST_MAX_BODY_BYTES
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                _discard_body(request, length)
                message = BODY_TOO_LARGE.format(limit=limit)
                return JsonResponse(
                    error_body("too_large", message, [{"field": "body", "message": message}]),
                    status=413,
                )
        return self.get_response(request)


URI_TOO_LONG = "request URL exceeds {limit} bytes"
HEADERS_TOO_LARGE = "request headers exceed {limit} bytes"


def _header_bytes(meta) -> int:
    # What the client sent, near enough: each header's name, ": ", value and CRLF.
    return sum(
        len(key) - 5 + len(str(value)) + 4 for key, value in meta.items() if key.startswith("HTTP_")
    ) + sum(
        len(key) + len(str(meta[key])) + 4
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH")
        if meta.get(key)
    )


class ApiRequestLimitMiddleware:
    """A JSON 414 or 431 for an /api/ request whose URL or headers are too large, at limits
    below gunicorn's (whose own refusals are HTML), so whatever proxy is in front, an API
    client always gets the JSON the README promises."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(API_PREFIX):
            url_limit = settings.FLYWHEEL_API_MAX_URL_BYTES
            query = request.META.get("QUERY_STRING", "")
            url_bytes = len(request.path_info.encode()) + (len(query) + 1 if query else 0)
            if url_bytes > url_limit:
                message = URI_TOO_LONG.format(limit=url_limit)
                return JsonResponse(error_body("uri_too_long", message), status=414)
            header_limit = settings.FLYWHEEL_API_MAX_HEADER_BYTES
            if _header_bytes(request.META) > header_limit:
                message = HEADERS_TOO_LARGE.format(limit=header_limit)
                return JsonResponse(error_body("headers_too_large", message), status=431)
        return self.get_response(request)


NOT_FOUND_DID_YOU_MEAN = "not found; did you mean {path}?"


def _probable_path(path: str) -> str | None:
    """The route a 404'd /api/ path probably meant: the same path with or without its
    trailing slash (the API's routes have none), if that one exists."""
    other = path.rstrip("/") if path.endswith("/") else path + "/"
    try:
        resolve(other)
    except Resolver404:
        return None
    return other


def _message(status: int, path: str = "") -> str:
    if status == 404 and (probable := _probable_path(path)):
        return NOT_FOUND_DID_YOU_MEAN.format(path=probable)
    if status == 500:
        return INTERNAL
    try:
        return HTTPStatus(status).phrase.lower()
    except ValueError:
        return "error"


class ApiJsonErrorsMiddleware:
    """Every /api/ error answers JSON with a stable `error` code, whoever produced it: a URL
    that matches no route (Django's 404 page), or a failure outside the API's own exception
    handlers (Django's 500 page, or with DEBUG its traceback). The API's handlers answer
    JSON themselves; this is the net under them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            request.path.startswith(API_PREFIX)
            and response.status_code >= 400
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            status = response.status_code
            if status >= 500 and status != 503:
                status = 500
            replaced = error_response(status, _message(status, request.path))
            for header in ("Allow", "WWW-Authenticate", "Retry-After"):
                if header in response:
                    replaced[header] = response[header]
            return replaced
        return response


# Powerful browser features Flywheel never uses, refused for its pages and anything they embed.
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "usb",
    )
)


class PermissionsPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response


# Django admin and the RQ dashboard are for admins: the admin role, not Django's staff flag,
# which an admin may set on anyone and which no Flywheel page looks at. Django's own answer
# to a logged-in user without staff rights is its login page with status 200; we answer 403
# so an annotator sees plainly that the page is not theirs.
ADMIN_ONLY_PREFIXES = ("/admin/", "/django-rq/")


class AdminOnlyMiddleware:
    """Also asks for the password again before a change in either (a POST: delete, empty a
    queue, requeue) when the last proof of it is older than FLYWHEEL_REAUTH_MINUTES."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(ADMIN_ONLY_PREFIXES):
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                require_role(user, ADMIN)
                if request.method == "POST" and not login.recently_authenticated(request.session):
                    target = request.META.get("HTTP_REFERER") or request.path
                    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
                        target = urlsplit(target).path
                    else:
                        target = request.path
                    return login.reauth_redirect(target)
        return self.get_response(request)


class SessionTimeoutMiddleware:
    """Logs out a session idle for FLYWHEEL_SESSION_IDLE_MINUTES or older than
    FLYWHEEL_SESSION_MAX_HOURS: the next request is sent to log in, and back afterwards."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not request.path.startswith(API_PREFIX)
            and login.session_expired(request.session)
        ):
            logout(request)
            response = redirect_to_login(request.get_full_path())
            # HtmxMiddleware runs later: read the header. A fragment swap would put the login
            # page inside the screen; the browser goes to it instead.
            if request.headers.get("HX-Request") == "true":
                return HttpResponseClientRedirect(response["Location"])
            return response
        return self.get_response(request)


# What the chain under BrowserEndMiddleware is, handed to the BrowserMiddleware above it:
# Django builds a chain from the inside out, in one thread.
_built = threading.local()
NO_BROWSER_END = (
    "flywheel_site.middleware.BrowserEndMiddleware must follow "
    "flywheel_site.middleware.BrowserMiddleware in MIDDLEWARE."
)


class BrowserEndMiddleware:
    """Where the page-only middleware ends (see `BrowserMiddleware`)."""

    def __init__(self, get_response):
        self.get_response = get_response
        _built.after_browser = get_response

    def __call__(self, request):
        return self.get_response(request)


class BrowserMiddleware:
    """Sends /api/ requests past the middleware only pages need (static files,
    sessions, CSRF, login, messages, htmx: everything between this and
    `BrowserEndMiddleware` in MIDDLEWARE), straight to what follows it. The API
    authenticates by token, keeps no session and renders no page; that middleware cost a
    single ingest event about 15% of its CPU time in the app (counted under callgrind,
    bench/RESULTS.md). Pages run it all, as before. Its names stay in MIDDLEWARE, where
    Django's, the admin's and django-axes's own checks look for them, and their view hooks
    run as Django runs them (CSRF exempts the API's views itself)."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.after = getattr(_built, "after_browser", None)
        _built.after_browser = None
        # The hand-off above is only this chain's if the marker follows this one.
        names = list(settings.MIDDLEWARE)
        mine, end = f"{__name__}.BrowserMiddleware", f"{__name__}.BrowserEndMiddleware"
        if self.after is None or end not in names or names.index(end) < names.index(mine):
            raise ImproperlyConfigured(NO_BROWSER_END)

    def __call__(self, request):
        if request.path.startswith(API_PREFIX):
            return self.after(request)
        return self.get_response(request)
