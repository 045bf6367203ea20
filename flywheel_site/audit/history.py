"""Per-object history: the audit events of one or more rows as a timeline a person can
read (who, when, what changed field by field, and the request path or job id).

Read from the pghistory event tables, one query per model shown. Each event holds the
row as it was after an insert or update (before a delete), so a change is the difference
between an event and the one before it on the same row. Rows whose inserts are not events
(interactions, feedback, candidates) show their first change without a "before"."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import models

from flywheel_site.audit.models import AuditRedaction

# Per object shown: the newest events. An object changed more often than this shows
# its latest changes; the global audit log has the rest.
EVENTS_MAX = 50
VALUE_MAX = 200
# Context keys shown as who and via; every other key is shown as a note (reason, run...).
_ACTOR_KEYS = {"user", "token", "source", "job", "queue", "func", "url"}


@dataclass
class Change:
    field: str
    before: str | None
    after: str


@dataclass
class HistoryEntry:
    when: datetime
    subject: str
    action: str
    actor: str
    via: str
    changes: list[Change] = field(default_factory=list)
    notes: dict = field(default_factory=dict)
    redacted: bool = False
    event_id: int = 0


def _value(raw) -> str:
    text = raw if isinstance(raw, str) else json.dumps(raw, default=str, sort_keys=True)
    return text if len(text) <= VALUE_MAX else text[: VALUE_MAX - 1] + "…"


def _fields(event_model) -> list[str]:
    return [
        f.attname
        for f in event_model._meta.concrete_fields
        if not f.name.startswith("pgh_") and f.attname not in ("pgh_obj_id", "id")
    ]


def actor_of(metadata: dict, users: dict[int, str]) -> tuple[str, str]:
    """(who, via) from an event's pghistory context: a user, an API token or a job;
    via is the request path or the job id."""
    if "user" in metadata:
        who = users.get(metadata["user"], f"user #{metadata['user']}")
    elif "token" in metadata:
        who = f"API token #{metadata['token']}"
    elif "job" in metadata:
        who = f"job {metadata.get('func') or ''}".strip()
    else:
        who = "system"
    via = f"job {metadata['job']}" if "job" in metadata else metadata.get("url", "")
    return who, via


def users_named(contexts: Iterable[dict]) -> dict[int, str]:
    ids = {m["user"] for m in contexts if isinstance(m.get("user"), int)}
    if not ids:
        return {}
    return dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "username"))


def _flatten(objs: Iterable) -> list[models.Model]:
    out = []
    for obj in objs:
        # A template passes "" for a missing related row (a silent variable failure).
        if obj is None or isinstance(obj, str):
            continue
        if isinstance(obj, models.Model):
            out.append(obj)
        else:
            out.extend(o for o in obj if o is not None)
    return out


def _events_of(model, rows: list[models.Model]) -> list:
    events = model.pgh_event_model.objects.filter(pgh_obj_id__in=[r.pk for r in rows])
    newest = list(
        events.select_related("pgh_context").order_by("-pgh_id")[: EVENTS_MAX * len(rows)]
    )
    return newest[::-1]


def object_history(*objs, limit: int = EVENTS_MAX * 2) -> list[HistoryEntry]:
    """The timeline of every row in `objs` (rows, or iterables of rows, of tracked models;
    untracked ones are skipped), newest first, at most `limit` entries."""
    by_model: dict[type, list] = defaultdict(list)
    for obj in _flatten(objs):
        if hasattr(type(obj), "pgh_event_model"):
            by_model[type(obj)].append(obj)
    raw = []
    for model, rows in by_model.items():
        raw.extend((model, event) for event in _events_of(model, rows))
    contexts = [e.pgh_context.metadata for _, e in raw if e.pgh_context is not None]
    users = users_named(contexts)
    redacted = set(
        AuditRedaction.objects.filter(
            table_name__in={m.pgh_event_model._meta.db_table for m in by_model},
            row_pk__in=[e.pgh_id for _, e in raw],
        ).values_list("table_name", "row_pk")
    )
    entries, previous = [], {}
    for model, event in raw:
        names = _fields(model.pgh_event_model)
        data = {name: getattr(event, name) for name in names}
        before = previous.get((model, event.pgh_obj_id))
        previous[(model, event.pgh_obj_id)] = data
        metadata = event.pgh_context.metadata if event.pgh_context is not None else {}
        who, via = actor_of(metadata, users)
        entries.append(
            HistoryEntry(
                when=event.pgh_created_at,
                subject=f"{model._meta.verbose_name} #{event.pgh_obj_id}",
                action=event.pgh_label,
                actor=who,
                via=via,
                changes=_changes(before, data, event.pgh_label),
                notes={k: v for k, v in metadata.items() if k not in _ACTOR_KEYS},
                redacted=(model.pgh_event_model._meta.db_table, event.pgh_id) in redacted,
                event_id=event.pgh_id,
            )
        )
    entries.sort(key=lambda e: (e.when, e.event_id), reverse=True)
    return entries[:limit]


def _changes(before: dict | None, after: dict, action: str) -> list[Change]:
    if action == "delete":
        return []
    if before is None:
        if action != "insert":
            return []
        return [Change(k, None, _value(v)) for k, v in after.items() if v not in (None, "", [], {})]
    return [Change(k, _value(before[k]), _value(v)) for k, v in after.items() if before.get(k) != v]
