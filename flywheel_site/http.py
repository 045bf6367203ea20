"""Small request/response helpers every app's views share: one home for the
"page or fragment" choice and for lenient integer query parameters."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def int_param(value) -> int | None:
    """An integer from a query string, or None when absent or not a number:
    a bad cursor in a URL shows the first page rather than an error."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def render_page(
    request: HttpRequest, template: str, part: str, context: dict, *, status: int = 200
) -> HttpResponse:
    """The whole page, or only its `{% partialdef part %}` for an HTMX request."""
    name = f"{template}#{part}" if getattr(request, "htmx", False) else template
    return render(request, name, context, status=status)
