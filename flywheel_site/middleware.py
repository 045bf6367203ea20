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
