"""ARCHITECTURE.md's URL map is complete and right: every URL the resolver knows (the
API's routes included) has a row naming its view, so a reader finds any behaviour from
its URL in two hops. Reads the resolver and the file; needs no database."""

import functools
import re

from django.urls import URLPattern, URLResolver, get_resolver

from tests.support import ROOT

HEADER = "| URL | view | service / selector |"
# Whole apps mounted from a library: one row each, under the mount's path.
MOUNTS = {"admin/": "django.contrib.admin", "django-rq/": "django_rq"}
APPS = ("curation", "review", "training", "flywheel_site")
CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")
HTTP_METHOD = re.compile(r"^(?:GET|POST|PUT|PATCH|DELETE) ")
CODE = re.compile(r"`([^`]+)`")


def _routes(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern


def _functions(pattern: URLPattern):
    """The function (or class) a reader opens for this URL."""
    callback = pattern.callback
    if hasattr(callback, "view_class"):
        return [callback.view_class]
    if isinstance(callback, functools.partial):
        return [callback.func]
    if callback.__name__ in ("sync_view_wrapper", "async_view_wrapper"):
        # django-ninja routes every method of a path through one wrapper around its
        # PathView (the closure's only cell); the operations hold the functions we wrote.
        (cell,) = callback.__closure__
        return [operation.view_func for operation in cell.cell_contents.operations]
    return [callback]


def _where(function) -> str:
    module = function.__module__
    if module.split(".")[0] in APPS:
        return module.replace(".", "/") + ".py"
    return module


def expected() -> list[tuple[str, str, str]]:
    """(URL as the map writes it, the view's file or module, its name) for every URL."""
    rows = set()
    for route, pattern in _routes(get_resolver().url_patterns):
        mount = next((m for m in MOUNTS if route.startswith(m)), None)
        if mount:
            rows.add((f"/{mount}", MOUNTS[mount], ""))
            continue
        url = "/" + CONVERTER.sub(r"<\1>", route)
        for function in _functions(pattern):
            rows.add((url, _where(function), function.__name__))
    return sorted(rows)


def map_rows(text: str) -> list[tuple[set[str], set[str]]]:
    """The URL map's rows: the URLs of the first cell, the code spans of the second."""
    rows, in_table = [], False
    for line in text.splitlines():
        if line.strip() == HEADER:
            in_table = True
            continue
        if in_table and line.startswith("| ---"):
            continue
        if not (in_table and line.startswith("|")):
            in_table = False
            continue
        cells = line.strip().strip("|").split(" | ")
        urls = {HTTP_METHOD.sub("", code) for code in CODE.findall(cells[0])}
        rows.append((urls, set(CODE.findall(cells[1]))))
    return rows


def missing(text: str, wanted) -> list[str]:
    rows = map_rows(text)
    return [
        f"{url} -> {where} {name}".rstrip()
        for url, where, name in wanted
        if not any(
            url in urls and where in views and (not name or name in views) for urls, views in rows
        )
    ]


def test_every_url_is_in_the_map_with_its_view():
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    assert missing(text, expected()) == []


def test_the_walk_sees_pages_api_routes_and_mounts():
    wanted = expected()
    assert ("/review/items/<pk>/submit/", "review/views.py", "submit") in wanted
    assert ("/api/v1/route", "training/registry/api.py", "route_get") in wanted
    assert ("/admin/", "django.contrib.admin", "") in wanted


def test_a_row_with_the_wrong_view_does_not_count():
    wanted = [("/review/stats/", "review/views.py", "stats")]
    right = f"{HEADER}\n| --- | --- | --- |\n| `/review/stats/` | `review/views.py` `stats` | x |\n"
    wrong = right.replace("`stats` | x", "`mine` | x")
    assert missing(right, wanted) == []
    assert missing(wrong, wanted) == ["/review/stats/ -> review/views.py stats"]
