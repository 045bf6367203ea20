"""Small request/response helpers every app's views share: one home for the
"page or fragment" choice, for lenient integer query parameters and for the date
fields of every form."""

from datetime import date
from functools import wraps

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render

# PostgreSQL's bigint: an id or cursor past it cannot match a row, only fail the query.
BIGINT_MAX = 2**63 - 1
# Days a form accepts. Arithmetic on a day near date.min or date.max (a window that
# starts 90 days earlier, a range that ends a day later) overflows, so neither is allowed.
EARLIEST_DAY = date(1970, 1, 1)
LATEST_DAY = date(9000, 12, 31)


def int_param(value) -> int | None:
    """An integer from a query string, or None when absent, not a number or outside
    bigint: a bad cursor in a URL shows the first page rather than an error."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if -BIGINT_MAX <= number <= BIGINT_MAX else None


def day_field(**kwargs) -> forms.DateField:
    """A form's date field, bounded to EARLIEST_DAY..LATEST_DAY."""
    return forms.DateField(
        validators=[MinValueValidator(EARLIEST_DAY), MaxValueValidator(LATEST_DAY)], **kwargs
    )


def render_page(
    request: HttpRequest, template: str, part: str, context: dict, *, status: int = 200
) -> HttpResponse:
    """The whole page, or only its `{% partialdef part %}` for an HTMX request."""
    name = f"{template}#{part}" if getattr(request, "htmx", False) else template
    return render(request, name, context, status=status)


def require_post(page: str, *params: str):
    """``require_POST`` for an action whose refusal re-renders its page at the action's
    URL: the browser is left there, so Back, reload or a copied link GET it. That GET is
    sent to the page holding the form (``page`` reversed with the URL's ``params``)
    rather than answered with a bare 405; other methods still get the 405."""

    def decorator(view):
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method in ("GET", "HEAD"):
                return redirect(page, **{name: kwargs[name] for name in params})
            if request.method != "POST":
                return HttpResponseNotAllowed(["GET", "HEAD", "POST"])
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
