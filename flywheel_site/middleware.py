from django.conf import settings
from django.http import JsonResponse

BODY_TOO_LARGE = "request body exceeds {limit} bytes"


class ApiBodyLimitMiddleware:
    """Refuse oversized API bodies with a JSON 413 before anything reads them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            limit = settings.FLYWHEEL_INGEST_MAX_BODY_BYTES
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                return JsonResponse(
                    {
                        "error": "too_large",
                        "message": BODY_TOO_LARGE.format(limit=limit),
                        "errors": [
                            {"field": "body", "message": BODY_TOO_LARGE.format(limit=limit)}
                        ],
                    },
                    status=413,
                )
        return self.get_response(request)


# Django admin and the RQ dashboard are for admins. Django's own answer to a
# logged-in user without staff rights is its login page with status 200; we
# answer 403 so an annotator sees plainly that the page is not theirs.
STAFF_ONLY_PREFIXES = ("/admin/", "/django-rq/")


class StaffOnlyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(STAFF_ONLY_PREFIXES):
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated and not user.is_staff:
                from django.core.exceptions import PermissionDenied

                from flywheel_site.access import FORBIDDEN

                raise PermissionDenied(FORBIDDEN)
        return self.get_response(request)
