"""The request id and the actor of whatever is running now, for the logs.

A request's id is the client's X-Request-ID when it is a sane one (a proxy or the
calling service already named the request: keeping its name joins their logs to ours),
otherwise a new one; it is echoed in the response. Jobs enqueued during the request
carry it in their meta (`RequestJob`), and the worker runs them under it, so one id
follows a request from the web process into every job it caused.

Context variables rather than thread-locals: each request and job sees its own, and a
value set during a request never leaks into the next one on the same thread."""

import logging
import re
import uuid
from contextvars import ContextVar

from django.core.signals import request_finished
from rq.job import Job

REQUEST_ID_HEADER = "X-Request-ID"
# Visible ASCII only: echoed in a header and written to logs, so nothing that could
# split a header or a log line, and short enough that a client cannot bloat every line.
REQUEST_ID_MAX = 128
_REQUEST_ID_RE = re.compile(rf"[\x21-\x7e]{{1,{REQUEST_ID_MAX}}}")
META_KEY = "request_id"

request_id_var: ContextVar[str | None] = ContextVar("flywheel_request_id", default=None)
actor_var: ContextVar[str | None] = ContextVar("flywheel_actor", default=None)

logger = logging.getLogger("flywheel.jobs")


def request_id_from(header: str | None) -> str:
    """The client's id if it is one we can safely keep, otherwise a fresh one."""
    if header and _REQUEST_ID_RE.fullmatch(header):
        return header
    return uuid.uuid4().hex


def actor_set(actor: str) -> None:
    """Name who acts for the rest of this request (a user, an API token)."""
    actor_var.set(actor)


class RequestIdMiddleware:
    """First in the chain, so every response, including the other middleware's own
    refusals, carries the id, and every log line of the request has it. The context is
    cleared when the response is closed (`request_finished`), not when this returns:
    Django logs a 4xx or 5xx after the middleware, and that line needs the id too."""

    def __init__(self, get_response):
        self.get_response = get_response
        request_finished.connect(_context_clear, dispatch_uid="flywheel_request_context")

    def __call__(self, request):
        request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id
        request_id_var.set(request_id)
        actor_var.set(None)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response


def _context_clear(**kwargs) -> None:
    request_id_var.set(None)
    actor_var.set(None)


class ActorMiddleware:
    """After the session timeout, which has already loaded the user: naming the actor
    costs no query. API requests are named by `TokenAuth` when their token is read."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            actor_set(f"user:{user.pk}")
        return self.get_response(request)


class RequestContextFilter(logging.Filter):
    """Puts the request id and actor on every record, for the formatters to print."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.actor = actor_var.get()
        return True


class RequestJob(Job):
    """RQ's job, carrying the request id of the request that enqueued it
    (settings.RQ["JOB_CLASS"], for the queues and the workers alike)."""

    @classmethod
    def create(cls, *args, **kwargs):
        job = super().create(*args, **kwargs)
        request_id = request_id_var.get()
        if request_id is not None:
            job.meta[META_KEY] = request_id
        return job

    def perform(self):
        id_token = request_id_var.set(self.meta.get(META_KEY))
        actor_token = actor_var.set(None)
        try:
            logger.info("job %s started: %s", self.id, self.func_name)
            result = super().perform()
            logger.info("job %s finished", self.id)
            return result
        finally:
            request_id_var.reset(id_token)
            actor_var.reset(actor_token)
