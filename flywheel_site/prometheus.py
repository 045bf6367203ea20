"""Prometheus metrics kept by the processes themselves: HTTP requests and ingested events.
The figures read from the database and Redis at scrape time are a collector of their own
(`training.metrics.prometheus`); the /metrics view (flywheel_site/views.py) joins both.

Under gunicorn each worker is a process with its own counters: with
PROMETHEUS_MULTIPROC_DIR set (scripts/run.sh sets it and empties it at start), every
process writes its counters to files there and a scrape adds up all of them, whichever
worker answers it. A worker that exits is marked dead by the gunicorn config
(scripts/gunicorn.conf.py)."""

import logging
import os
import time

from django.conf import settings
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

access_log = logging.getLogger("flywheel.http")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# A request that matched no URL pattern: one label for all of them, so a scanner walking
# random paths cannot create a series per path.
UNMATCHED = "<unmatched>"

HTTP_REQUESTS = Counter(
    "flywheel_http_requests",
    "HTTP requests answered, by URL route (the pattern, not the path), method and status.",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "flywheel_http_request_duration_seconds",
    "Time to answer an HTTP request, by URL route and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
EVENTS_INGESTED = Counter(
    "flywheel_events_ingested",
    "Events received by ingest (REST and OTLP), by kind (interaction, feedback) and "
    "status (created, duplicate, rejected).",
    ["kind", "status"],
)
# Methods outside this list share one label: the method is client-chosen text.
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def events_ingested_count(*, kind: str, status: str, n: int) -> None:
    if n:
        EVENTS_INGESTED.labels(kind, status).inc(n)


def _route(request) -> str:
    match = getattr(request, "resolver_match", None)
    return UNMATCHED if match is None else "/" + match.route


class HttpMetricsMiddleware:
    """Counts and times every request by its route. With FLYWHEEL_LOG_FORMAT=json it also
    writes the access line, as JSON: gunicorn's own access log is text, and is off then."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        start = time.perf_counter()
        response = self.get_response(request)
        seconds = time.perf_counter() - start
        route = _route(request)
        method = request.method if request.method in _METHODS else "OTHER"
        HTTP_DURATION.labels(route, method).observe(seconds)
        HTTP_REQUESTS.labels(route, method, str(response.status_code)).inc()
        if settings.FLYWHEEL_LOG_FORMAT == "json":
            access_log.info(
                "%s %s %s %d %.1fms",
                method,
                route,
                request.path,
                response.status_code,
                seconds * 1000,
            )
        return response


class _Process:
    """This process's own registry (HTTP, ingest, and Python's process and GC figures)
    as one collector of the scrape's registry."""

    def collect(self):
        return REGISTRY.collect()


def scrape_registry(*collectors) -> CollectorRegistry:
    """A registry for one scrape: every process's counters (all gunicorn workers' under
    multiprocess mode, else this process's) and the given collectors."""
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROC_ENV):
        MultiProcessCollector(registry)
    else:
        registry.register(_Process())
    for collector in collectors:
        registry.register(collector)
    return registry
