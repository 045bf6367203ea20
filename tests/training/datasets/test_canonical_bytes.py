"""The export lines and content hashes are written by orjson; the manifests promise the bytes
of json.dumps with JSON_OPTIONS. These hold the two to the same bytes on any text PostgreSQL
can store (no NUL, no lone surrogate)."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from training.datasets import canonical
from training.datasets.models import ExportFormat

# Any Unicode scalar value but NUL (PostgreSQL text refuses it) and the surrogates (UTF-8
# cannot encode them): control characters, U+2028, emoji and right-to-left text included.
TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"))
MESSAGES = st.lists(st.fixed_dictionaries({"role": TEXT, "content": TEXT}), max_size=4)
NESTED = st.recursive(
    st.none() | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=20,
)


def _old_bytes(value) -> bytes:
    return json.dumps(value, **canonical.JSON_OPTIONS).encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(NESTED)
def test_canonical_text_bytes_equals_the_json_dumps_form(value):
    assert canonical.canonical_text_bytes(value) == _old_bytes(value)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([f.value for f in ExportFormat]),
    MESSAGES,
    TEXT,
    st.none() | TEXT,
)
def test_every_export_line_and_content_hash_keeps_its_bytes(fmt, prompt, chosen, rejected):
    example = canonical.example(fmt=fmt, prompt=prompt, chosen=chosen, rejected=rejected)
    assert canonical.line(fmt=fmt, prompt=prompt, chosen=chosen, rejected=rejected) == (
        _old_bytes(example) + b"\n"
    )
    content = {"kind": "preference", "prompt": prompt, "chosen": chosen, "rejected": rejected}
    assert canonical.content_sha256(
        kind="preference", prompt=prompt, chosen=chosen, rejected=rejected
    ) == canonical.sha256_hex(_old_bytes(content))
