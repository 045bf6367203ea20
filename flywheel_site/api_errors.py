"""The one shape of every /api/ error: {"error": <stable code>, "message": ..., "errors": [...]}.

Clients branch on `error`, never on the message. The codes are part of the API contract."""

from django.http import JsonResponse
from pydantic import BaseModel, Field

ERROR_CODES = {
    400: "malformed",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    422: "invalid",
    429: "rate_limited",
    500: "internal",
    503: "unavailable",
}
INTERNAL = "internal error; it has been logged"
UNAVAILABLE = "the service is temporarily unavailable; retry after {seconds} s"
# Long enough for a database restart or fail-over, short enough that clients catch up soon.
RETRY_AFTER_S = 10


def error_code(status: int) -> str:
    return ERROR_CODES.get(status, "error")


def error_body(error: str, message: str, errors: list | None = None) -> dict:
    return {"error": error, "message": message, "errors": errors or []}


def error_response(status: int, message: str) -> JsonResponse:
    return JsonResponse(error_body(error_code(status), message), status=status)


# The schema of that shape in the OpenAPI document: every route lists it for its error statuses.
class ErrorOut(BaseModel):
    error: str
    message: str
    errors: list[dict[str, str]] = Field(default_factory=list)
