"""Import production logs in the common JSONL shape through the same
validation, PII stripping and idempotency as the API.

interactions_<date>.jsonl, one object per line, e.g.
  {"id": "abc", "timestamp": "2026-10-01T12:00:00Z", "workload_id": "support",
   "request": {"model": "m1", "messages": [{"role": "user", "content": "..."}]},
   "response": {"choices": [{"message": {"role": "assistant", "content": "..."}}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}},
   "latency_ms": 420, "metadata": {...}}
feedback_<date>.jsonl:
  {"id": "f1", "interaction_id": "abc", "feedback_type": "thumbs_up", "feedback_value": ...}
"""

import hashlib
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from curation.models import Source
from curation.services import batch_ingest

CHUNK = 500
FEEDBACK_TYPES = {
    "thumbs_up": "thumbs_up",
    "thumbsup": "thumbs_up",
    "like": "thumbs_up",
    "thumbs_down": "thumbs_down",
    "thumbsdown": "thumbs_down",
    "dislike": "thumbs_down",
    "rating": "rating",
    "accept": "accepted",
    "accepted": "accepted",
    "copy": "copied",
    "copied": "copied",
    "regenerate": "regenerated",
    "regenerated": "regenerated",
    "edit": "edited",
    "edited": "edited",
    "correction": "corrected",
    "corrected": "corrected",
    "comment": "comment",
}


def _line_id(prefix: str, line: str) -> str:
    return f"{prefix}-{hashlib.sha256(line.encode()).hexdigest()[:32]}"


def interaction_from_log(record: dict, line: str) -> dict:
    """Map one log record onto the API's interaction shape (unknown shapes are
    passed through so validation names what is missing)."""
    request = record.get("request") if isinstance(record.get("request"), dict) else {}
    response = record.get("response")
    usage = record.get("usage") or record.get("tokens_used")
    content = response
    if isinstance(response, dict):
        usage = usage or response.get("usage")
        choices = response.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            message = choices[0].get("message") or {}
            content = message.get("content") if isinstance(message, dict) else None
        else:
            content = response.get("content")
    metadata = record.get("metadata") if isinstance(record.get("metadata"), dict) else {}
    out = {
        "event_id": str(record.get("id") or record.get("event_id") or _line_id("import-i", line)),
        "messages": request.get("messages", record.get("messages")),
        "response": content,
        "model": request.get("model") or record.get("model") or "",
        "task_type": record.get("task_type") or record.get("workload_id") or "",
        "metadata": metadata,
    }
    if isinstance(usage, dict):
        out["usage"] = {
            k: usage[k]
            for k in ("prompt_tokens", "completion_tokens", "total_tokens")
            if k in usage
        }
    elif isinstance(usage, int):
        out["usage"] = {"total_tokens": usage}
    for key in ("latency_ms", "session_id", "user_id"):
        if record.get(key) is not None:
            out[key] = record[key]
    if record.get("timestamp") or record.get("occurred_at"):
        out["occurred_at"] = record.get("timestamp") or record.get("occurred_at")
    return out


def feedback_from_log(record: dict, line: str) -> dict:
    raw_type = str(record.get("feedback_type") or record.get("kind") or "").strip().lower()
    kind = FEEDBACK_TYPES.get(raw_type, raw_type)
    value = record.get("feedback_value", record.get("value"))
    out = {
        "event_id": str(record.get("id") or record.get("event_id") or _line_id("import-f", line)),
        "interaction_event_id": str(record.get("interaction_id") or ""),
        "kind": kind,
    }
    if kind in ("edited", "corrected"):
        out["final_text"] = record.get("final_text") or value
    elif kind == "rating" and isinstance(value, str) and value.strip().isdigit():
        out["value"] = int(value)
    elif value is not None and kind in ("rating", "comment"):
        out["value"] = value
    if record.get("timestamp") or record.get("occurred_at"):
        out["occurred_at"] = record.get("timestamp") or record.get("occurred_at")
    return out


def _field(path: str) -> str:
    """The field within the record: "interactions.3.usage.total_tokens" -> "usage.total_tokens";
    an error on the whole record (one that could not be stored) -> "record"."""
    parts = path.split(".", 2)
    return parts[2] if len(parts) == 3 else "record"


class Command(BaseCommand):
    help = "Import interactions_*.jsonl and feedback_*.jsonl from DIR."

    def add_arguments(self, parser):
        parser.add_argument("directory")
        parser.add_argument("--source", default="import", help="source name (default: import)")

    def handle(self, *args, directory, source, **options):
        root = Path(directory)
        if not root.is_dir():
            raise CommandError(f"{directory} is not a directory")
        files = sorted(root.glob("interactions_*.jsonl")) + sorted(root.glob("feedback_*.jsonl"))
        if not files:
            raise CommandError(f"no interactions_*.jsonl or feedback_*.jsonl in {directory}")
        source_row, _ = Source.objects.get_or_create(name=source)
        totals = {"created": 0, "duplicate": 0, "rejected": 0}
        total_lines = sum(1 for f in files for line in f.open(encoding="utf-8") if line.strip())
        with tqdm(total=total_lines, unit="rec", file=self.stderr._out, disable=None) as bar:
            for path in files:
                kind = "interactions" if path.name.startswith("interactions_") else "feedback"
                chunk: list[tuple[int, dict]] = []
                for number, line in enumerate(path.open(encoding="utf-8"), start=1):
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                        if not isinstance(record, dict):
                            raise ValueError("not an object")
                    except ValueError:
                        totals["rejected"] += 1
                        self.stderr.write(f"{path.name}:{number}: not a JSON object")
                        bar.update(1)
                        continue
                    mapper = interaction_from_log if kind == "interactions" else feedback_from_log
                    chunk.append((number, mapper(record, line)))
                    if len(chunk) >= CHUNK:
                        self._flush(source_row, kind, path, chunk, totals, bar)
                        chunk = []
                if chunk:
                    self._flush(source_row, kind, path, chunk, totals, bar)
        self.stdout.write(
            f"created {totals['created']}, duplicate {totals['duplicate']}, "
            f"rejected {totals['rejected']}"
        )

    def _flush(self, source, kind, path, chunk, totals, bar):
        payload = [item for _, item in chunk]
        result = batch_ingest(
            source=source,
            interactions=payload if kind == "interactions" else [],
            feedback=payload if kind == "feedback" else [],
            edits=[],
        )
        for key in totals:
            totals[key] += result[key]
        for item in result["results"]:
            if item["status"] == "rejected":
                line_no = chunk[item["index"]][0]
                fields = "; ".join(f"{_field(e['field'])}: {e['message']}" for e in item["errors"])
                self.stderr.write(f"{path.name}:{line_no}: {fields}")
        bar.update(len(chunk))
