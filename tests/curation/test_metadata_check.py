"""Metadata is measured with orjson and judged by the standard encoder only when orjson
cannot tell (`schemas._check_metadata`): it must refuse exactly what the standard encoder's
rules refuse (non-finite numbers, nesting past the limit, NUL, lone surrogates) and accept
the rest, whichever encoder measured it."""

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from curation.schemas import METADATA_MAX_DEPTH, InteractionIn

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["\x00", "a\x00b", "\ud800", "null", "é", "\u2028"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)


def _depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def _refused_by_the_rules(metadata: dict) -> bool:
    try:
        text = json.dumps(metadata, ensure_ascii=False, allow_nan=False)
        text.encode()
    except (ValueError, UnicodeEncodeError):
        return True  # a non-finite number or a lone surrogate
    return "\\u0000" in text or _depth(metadata) > METADATA_MAX_DEPTH


def _accepted(metadata: dict) -> bool:
    body = {"event_id": "e", "messages": [{"role": "user", "content": "q"}], "response": "a"}
    try:
        InteractionIn.model_validate({**body, "metadata": metadata})
    except ValidationError:
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(max_size=6), values, max_size=4))
def test_metadata_is_refused_exactly_when_a_rule_refuses_it(metadata):
    assert _accepted(metadata) is not _refused_by_the_rules(metadata)


def test_the_edges_each_encoder_sees_differently():
    deep: dict = {}
    node = deep
    for _ in range(300):  # past orjson's own limit (255): the standard encoder judges it
        node["a"] = {}
        node = node["a"]
    assert not _accepted(deep)
    assert not _accepted({"x": math.nan})  # orjson would write null
    assert not _accepted({"x": [1, {"y": -math.inf}]})
    assert _accepted({"x": None, "big": 2**70})  # null itself, and past 64 bits, are fine
    assert not _accepted({"k\ud800": 1})
