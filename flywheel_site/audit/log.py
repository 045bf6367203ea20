"""The global audit log (admins): every event on the audit chain, newest first, filtered by
object type, action, actor and time, a keyset page at a time, and exported as CSV or JSONL
streamed with the same filter.

It reads the chain's links (`AuditLink`), which copy each event's label, object id and
context, who did it and the job: one table with an index per filter, so a page is one
index probe whatever the number of events, and nothing counts the table. The content of
events (and so any text a user wrote) is not in the log: field-level changes are on each
object's page (flywheel_site/audit/history.py)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime

import pghistory.models
from django.apps import apps
from django.db.models import QuerySet
from pghistory.models import Context

from flywheel_site.audit.history import actor_of, users_named
from flywheel_site.audit.models import AuditLink
from flywheel_site.keyset import KeysetPage

EXPORT_CHUNK = 2000
ACTIONS = ("insert", "update", "delete", "redaction")
# A spreadsheet runs a cell that starts with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def object_types() -> dict[str, str]:
    """Event table -> the tracked model's label ("curation.interaction"), for every model
    with history; sorted by label."""
    found = {
        model._meta.db_table: model.pgh_tracked_model._meta.label_lower
        for model in apps.get_models()
        if issubclass(model, pghistory.models.Event) and hasattr(model, "pgh_tracked_model")
    }
    found["audit_auditredaction"] = "audit.redaction"
    return dict(sorted(found.items(), key=lambda item: item[1]))


@dataclass(frozen=True)
class LogFilter:
    table: str | None = None
    action: str | None = None
    # ("user", pk), ("token", id) or ("job", id)
    actor: tuple[str, int | str] | None = None
    since: datetime | None = None
    until: datetime | None = None


def audit_links(filters: LogFilter) -> QuerySet[AuditLink]:
    links = AuditLink.objects.all()
    if filters.table:
        links = links.filter(table_name=filters.table)
    if filters.action:
        links = links.filter(label=filters.action)
    if filters.since:
        links = links.filter(created_at__gte=filters.since)
    if filters.until:
        links = links.filter(created_at__lt=filters.until)
    if filters.actor:
        # One index range in chain order each: (actor, seq) and (job, seq).
        key, value = filters.actor
        links = links.filter(job=value) if key == "job" else links.filter(actor=f"{key}:{value}")
    return links.only("seq", "table_name", "row_pk", "label", "obj_id", "context_id", "created_at")


@dataclass
class LogRow:
    seq: int
    when: datetime
    object_type: str
    object_id: str
    action: str
    actor: str
    via: str
    notes: dict


def log_rows(links: list[AuditLink]) -> list[LogRow]:
    """The links as rows a person reads: who from the event's context, one query for the
    contexts and one for the users named."""
    contexts = dict(
        Context.objects.filter(
            id__in={link.context_id for link in links if link.context_id}
        ).values_list("id", "metadata")
    )
    users = users_named(contexts.values())
    types = object_types()
    rows = []
    for link in links:
        metadata = contexts.get(link.context_id, {})
        who, via = actor_of(metadata, users)
        notes = {k: v for k, v in metadata.items() if k not in {"user", "token", "job", "url"}}
        rows.append(
            LogRow(
                seq=link.seq,
                when=link.created_at,
                object_type=types.get(link.table_name, link.table_name),
                object_id=link.obj_id or (str(link.row_pk) if link.label == "redaction" else ""),
                action=link.label or "",
                actor=who,
                via=via,
                notes=notes,
            )
        )
    return rows


def audit_log_page(
    filters: LogFilter, *, before: int | None = None, after: int | None = None
) -> tuple[KeysetPage, list[LogRow]]:
    page = KeysetPage.of(audit_links(filters), before=before, after=after)
    return page, log_rows(page.rows)


def _all_rows(filters: LogFilter) -> Iterator[LogRow]:
    """Every matching row, newest first, read in keyset chunks (no long transaction)."""
    links = audit_links(filters).order_by("-seq")
    last = None
    while True:
        chunk = list((links.filter(seq__lt=last) if last else links)[:EXPORT_CHUNK])
        if not chunk:
            return
        yield from log_rows(chunk)
        last = chunk[-1].seq


def _cell(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return "'" + text if text.startswith(_FORMULA_START) else text


class _Line:
    def write(self, value: str) -> str:
        return value


def log_csv(filters: LogFilter) -> Iterator[str]:
    writer = csv.writer(_Line())
    fields = list(LogRow.__dataclass_fields__)
    yield writer.writerow(fields)
    for row in _all_rows(filters):
        data = asdict(row)
        data["when"] = row.when.isoformat()
        yield writer.writerow([_cell(data[name]) for name in fields])


def log_jsonl(filters: LogFilter) -> Iterator[str]:
    for row in _all_rows(filters):
        yield json.dumps(asdict(row), default=str, sort_keys=True) + "\n"
