"""Log output for FLYWHEEL_LOG_FORMAT: `text` (a line a person reads) or `json` (one
object per line, for a log pipeline: Loki, Elasticsearch, Datadog, CloudWatch).

Every record carries the request id and actor that `flywheel_site.request_context`
keeps; the web process, the RQ workers and gunicorn's own messages all go through the
same handler, so a pipeline parses one format."""

import json
import logging
from datetime import UTC, datetime

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(levelname)s %(name)s [%(request_id)s %(actor)s] %(message)s"


class JsonFormatter(logging.Formatter):
    """time (UTC, ISO 8601 with milliseconds), level, logger, message, request_id, actor;
    and `exception` (the traceback as text) when the record has one."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "actor": getattr(record, "actor", None),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        # default=str: an argument logged as an object must never break the log line.
        return json.dumps(entry, ensure_ascii=False, default=str)


def logging_config(*, log_format: str, level: str) -> dict:
    """The LOGGING dict: one console handler with the request context on every record."""
    formatter = (
        {"()": "flywheel_site.logformat.JsonFormatter"}
        if log_format == "json"
        else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "flywheel_site.request_context.RequestContextFilter"}},
        "formatters": {"flywheel": formatter},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "filters": ["context"],
                "formatter": "flywheel",
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "INFO"},
            # django-axes logs its configuration at INFO on every start: every manage.py call.
            "axes": {"level": "WARNING"},
            # rq's cron logs every job it enqueues at INFO (a line every few seconds), whatever
            # level rqcron is given.
            "rq.cron": {"level": "WARNING"},
        },
    }
