"""PII redaction of JSON values (ingest's metadata): every string, object keys included, goes
through `curation.pii`, with a shortcut for the common case of metadata without PII."""

import bisect
import itertools

from curation.pii import check_region, find_pii, first_hint, redact


def _strings_of(node: object, out: list[str]) -> None:
    # Every string `redact_json` would scan: values and keys, through dicts, lists, tuples.
    if isinstance(node, str):
        out.append(node)
    elif isinstance(node, dict):
        for key, item in node.items():
            if isinstance(key, str):
                out.append(key)
            _strings_of(item, out)
    elif isinstance(node, list | tuple):
        for item in node:
            _strings_of(item, out)


def _may_hold_pii(strings: list[str], region: str) -> bool:
    """False when no string can hold PII: one hint search over them all, joined by a
    newline, which it cannot match (no match spans two strings); the strings it matches
    (often a UUID) are scanned whole."""
    joined = "\n".join(strings)
    found = first_hint(joined)
    ends = list(itertools.accumulate(len(text) + 1 for text in strings)) if found >= 0 else []
    while found >= 0:
        k = bisect.bisect_right(ends, found)
        if find_pii(strings[k], region=region):
            return True
        found = first_hint(joined, ends[k])
    return False


def redact_json(value: object, *, region: str = "US") -> tuple[object, dict[str, int]]:
    """A JSON-like value with every string redacted, object keys included: a key is free
    text to whoever writes it (`{"alice@example.com": ...}`). Keys that become equal once
    redacted are merged, the later value winning. A copy when anything was redacted, else the
    value itself (metadata rarely holds PII: rebuilding it cost ingest 8 us an event)."""
    check_region(region)
    strings: list[str] = []
    _strings_of(value, strings)
    if not _may_hold_pii(strings, region):
        return value, {}
    totals: dict[str, int] = {}

    def walk(node: object) -> object:
        if isinstance(node, str):
            redacted, counts = redact(node, region=region)
            for kind, n in counts.items():
                totals[kind] = totals.get(kind, 0) + n
            return redacted
        if isinstance(node, dict):
            return {
                walk(key) if isinstance(key, str) else key: walk(item) for key, item in node.items()
            }
        if isinstance(node, list):
            return [walk(item) for item in node]
        if isinstance(node, tuple):
            return tuple(walk(item) for item in node)
        return node

    return walk(value), totals
