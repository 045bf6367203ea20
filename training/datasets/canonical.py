"""Pure helpers shared by gold creation, selection, export and verification: canonical JSON,
content hashes, the split rule and the TRL line formats. No ORM here."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson

from training.datasets.models import ExportFormat, PairKind

# Every byte we hash or export goes through this: sorted keys, no whitespace, UTF-8 kept as
# is, so the same data always gives the same bytes on any machine and Python version.
JSON_OPTIONS = {"sort_keys": True, "ensure_ascii": False, "separators": (",", ":")}
# The standard (string) DPO prompt: TRL joins prompt and completion with no separator, so a
# prompt must end with a newline. Conversations of more than one message keep their roles.
STANDARD_TURN = "{role}: {content}"
STANDARD_REPLY_CUE = "assistant:"
SPLIT_BUCKETS = 16**15
MINHASH_SEPARATOR = "\n"

FORMATS_BY_KIND = {
    PairKind.PREFERENCE.value: (
        ExportFormat.DPO_STANDARD.value,
        ExportFormat.DPO_CONVERSATIONAL.value,
        ExportFormat.SFT_CONVERSATIONAL.value,
    ),
    PairKind.SFT.value: (ExportFormat.SFT_CONVERSATIONAL.value,),
}


def canonical_json(value: Any) -> str:
    return json.dumps(value, **JSON_OPTIONS)


def canonical_text_bytes(value: Any) -> bytes:
    """canonical_json(value) encoded as UTF-8, for values built of strings, None, lists and
    dicts with string keys (the export lines and content hashes). orjson writes those bytes
    about ten times faster; it differs from json.dumps only on numbers (1e+16 vs 1e16) and
    refuses lone surrogates, neither of which such a value holds once it came from
    PostgreSQL. tests/training/datasets/test_canonical_bytes.py holds the two to the same
    bytes."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def sha256_hex(data: str | bytes) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def clean_messages(messages: Any) -> list[dict[str, str]]:
    """Role and content only: extra keys (names, tool calls) differ between rows, and Arrow
    refuses a JSON column whose struct fields change from one row to the next."""
    return [
        {"role": str(m.get("role", "user")), "content": str(m.get("content", ""))}
        for m in messages or []
        if isinstance(m, dict)
    ]


def content_sha256(*, kind: str, prompt: list[dict], chosen: str, rejected: str | None) -> str:
    return sha256_hex(
        canonical_text_bytes(
            {"kind": kind, "prompt": prompt, "chosen": chosen, "rejected": rejected}
        )
    )


def prompt_text(messages: list[dict]) -> str:
    return "\n".join(m["content"] for m in messages if m.get("role") == "user")


def split_bucket(lineage_key: str) -> float:
    """A uniform number in [0, 1) from the pair's lineage key (itself a sha256)."""
    return int(lineage_key[:15], 16) / SPLIT_BUCKETS


def standard_prompt(messages: list[dict]) -> str:
    if len(messages) == 1 and messages[0]["role"] == "user":
        return messages[0]["content"] + "\n"
    turns = [STANDARD_TURN.format(role=m["role"], content=m["content"]) for m in messages]
    return "\n".join([*turns, STANDARD_REPLY_CUE]) + "\n"


def example(*, fmt: str, prompt: list[dict], chosen: str, rejected: str | None) -> dict:
    """One training example exactly as TRL loads it."""
    if fmt == ExportFormat.DPO_STANDARD:
        return {"prompt": standard_prompt(prompt), "chosen": chosen, "rejected": rejected}
    if fmt == ExportFormat.DPO_CONVERSATIONAL:
        return {
            "prompt": prompt,
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}],
        }
    if fmt == ExportFormat.SFT_CONVERSATIONAL:
        return {"messages": [*prompt, {"role": "assistant", "content": chosen}]}
    raise ValueError(fmt)


def line(*, fmt: str, prompt: list[dict], chosen: str, rejected: str | None) -> bytes:
    return (
        canonical_text_bytes(example(fmt=fmt, prompt=prompt, chosen=chosen, rejected=rejected))
        + b"\n"
    )
