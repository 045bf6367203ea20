"""Ingest payload shapes. Pydantic validates them; the OpenAPI schema at
/api/v1/openapi.json is generated from these classes.

They derive from pydantic's BaseModel, not ninja's Schema: Schema wraps every
value in a DjangoGetter (made for reading ORM objects) and, with extra="forbid",
validates each model twice, nested models four times. On a 500-event batch
that was about a third of the request's CPU; plain pydantic is what ninja
accepts for bodies and responses all the same."""

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from curation.models import FeedbackKind
from flywheel_site.hot_settings import hot_settings

BAD_CHARACTERS = "text must not contain NUL characters or unpaired surrogates"


def _storable(value: str) -> str:
    # PostgreSQL text and jsonb cannot hold NUL, and UTF-8 cannot encode lone
    # surrogates: refuse them here so a batch never fails halfway in the database.
    if "\x00" in value:
        raise ValueError(BAD_CHARACTERS)
    if value.isascii():  # O(1) in CPython (a flag of the string): no surrogate possible
        return value
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValueError(BAD_CHARACTERS) from None
    return value


# The same rule in the OpenAPI schema (surrogates cannot occur in valid JSON text).
_NO_NUL = Field(json_schema_extra={"pattern": "^[^\\u0000]*$"})
BLANK = "must contain a non-blank character"


def _stripped(value: str) -> str:
    # Stripped after the length check, so that maxLength in the schema means what it says.
    return _storable(value).strip()


def _stripped_not_blank(value: str) -> str:
    value = _storable(value).strip()
    if not value:
        raise ValueError(BLANK)
    return value


Text = Annotated[str, AfterValidator(_storable), _NO_NUL]
EventId = Annotated[
    str,
    StringConstraints(max_length=200),
    AfterValidator(_stripped_not_blank),
    Field(json_schema_extra={"pattern": "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"}),
]
ShortStr = Annotated[str, StringConstraints(max_length=200), AfterValidator(_stripped), _NO_NUL]
LabelStr = Annotated[str, StringConstraints(max_length=100), AfterValidator(_stripped), _NO_NUL]
UserId = Annotated[str, StringConstraints(max_length=500), AfterValidator(_storable), _NO_NUL]
Kind = Literal[tuple(FeedbackKind.values)]  # type: ignore[valid-type]

# PostgreSQL `integer`: latency_ms is one, and usage counts are held to the same range
# so every consumer can read them as one.
INT4_MAX = 2**31 - 1
# Deeper metadata is refused: the JSON encoder, the PII walk and PostgreSQL's jsonb
# parser all recurse, and a body under the size limit can nest thousands of levels.
METADATA_MAX_DEPTH = 32

METADATA_TOO_LARGE = "metadata must serialise to at most {limit} bytes of JSON"
TEXT_TOO_LONG = "text must be at most {limit} characters"
RATING_REQUIRED = "a rating needs an integer value from 1 to 5"
COMMENT_REQUIRED = "a comment needs a non-empty string value"
FINAL_TEXT_REQUIRED = "final_text is required for edited and corrected feedback"
VALUE_TYPE = "value must be an integer, a string or null"
NOT_FINITE = "numbers must be finite (NaN and Infinity are not JSON)"
TOO_DEEP = "metadata nests at most {limit} levels"
NOT_A_TIMESTAMP = "a date and time in RFC 3339 form, such as 2026-01-31T12:00:00Z"
OUT_OF_WINDOW = "occurred_at must lie between {earliest} and {latest} (UTC)"


def earliest_occurred_at() -> datetime:
    return datetime(hot_settings.FLYWHEEL_INGEST_EARLIEST_YEAR, 1, 1, tzinfo=UTC)


def latest_occurred_at() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=hot_settings.FLYWHEEL_INGEST_MAX_FUTURE_S)


def _timestamp_text(value: Any) -> Any:
    # Lax pydantic would read 1700000000 as Unix time and "2026-01-31" as midnight;
    # the schema promises an RFC 3339 date-time, so that is all that is read.
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or len(value) <= len("2026-01-31"):
        raise PydanticCustomError("datetime_type", NOT_A_TIMESTAMP)
    return value


def _in_window(value: datetime) -> datetime:
    """The instant in UTC, inside the accepted window.

    Converted here because PostgreSQL refuses offsets beyond +-15:59 that RFC 3339
    allows, and bounded because years 1 and 9999 with an offset become timestamps
    (1 BC, 10000) that Python cannot read back."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    # Compared before converting: astimezone() overflows at the ends of the calendar.
    # A later year than the earliest is inside whatever its offset (at most a day).
    earliest, latest = None, latest_occurred_at()
    if value.year <= hot_settings.FLYWHEEL_INGEST_EARLIEST_YEAR:
        earliest = earliest_occurred_at()
    if value > latest or (earliest is not None and value < earliest):
        earliest = earliest or earliest_occurred_at()
        raise ValueError(
            OUT_OF_WINDOW.format(
                earliest=earliest.isoformat(timespec="seconds"),
                latest=latest.isoformat(timespec="seconds"),
            )
        )
    return value.astimezone(UTC)


OCCURRED_AT_DOC = (
    "When it happened: an RFC 3339 date-time; a time without an offset is UTC; stored in "
    "UTC. Accepted from January 1 of FLYWHEEL_INGEST_EARLIEST_YEAR (default "
    "2000-01-01T00:00:00Z) to now + FLYWHEEL_INGEST_MAX_FUTURE_S (default one day). "
    "Default: the time it is received."
)
Timestamp = Annotated[
    datetime,
    BeforeValidator(_timestamp_text),
    AfterValidator(_in_window),
    Field(description=OCCURRED_AT_DOC),
]


def _integral(value: Any) -> Any:
    # JSON Schema counts 412.0 as an integer, so it is read as 412; true and 412.5 are
    # refused (lax pydantic would store true as 1).
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Constraints before the validator: the other order leaves them out of the JSON schema.
Count = Annotated[StrictInt, Field(ge=0, le=INT4_MAX), BeforeValidator(_integral)]


def _check_text(value: str) -> str:
    limit = hot_settings.FLYWHEEL_TEXT_MAX_CHARS
    if len(value) > limit:
        raise ValueError(TEXT_TOO_LONG.format(limit=limit))
    return value


def _storable_text(value: str) -> str:
    # The two checks of a long text in one call: it runs for every message and response.
    return _check_text(_storable(value))


LongText = Annotated[str, AfterValidator(_storable_text), _NO_NUL]

PLACEHOLDER_TEXT = (
    "holds no letter or digit: a placeholder such as '...' is not an edit; send the real text"
)


def _check_not_placeholder(value: str) -> str:
    # An edit of "..." would enter review and could become gold: junk that looks like data.
    if value and not any(char.isalnum() for char in value):
        raise ValueError(PLACEHOLDER_TEXT)
    return value


def _check_tree(value: dict[str, Any]) -> None:
    """Refuse non-finite numbers and deep nesting, naming the path of the first.

    Iterative: a recursive walk could itself run out of stack on hostile input.
    The path goes into the error's context, which the error formatters append to
    the field's location (`metadata.a.0.b`)."""
    stack: list[tuple[Any, tuple[str, ...]]] = [(value, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, float):
            if not math.isfinite(node):
                raise PydanticCustomError("finite_number", NOT_FINITE, {"path": path})
            continue
        if isinstance(node, dict):
            items = node.items()
        elif isinstance(node, list):
            items = enumerate(node)
        else:
            continue
        if len(path) >= METADATA_MAX_DEPTH:
            raise PydanticCustomError(
                "too_deep", TOO_DEEP.format(limit=METADATA_MAX_DEPTH), {"path": path}
            )
        stack.extend((item, (*path, str(key))) for key, item in items)


def _check_metadata(value: dict[str, Any]) -> dict[str, Any]:
    try:
        encoded = orjson.dumps(value)
    except orjson.JSONEncodeError:
        encoded = None
    # orjson writes NaN and Infinity as null, and refuses what the standard encoder takes
    # (keys that are not strings, integers past 64 bits, 255 levels): those values, and
    # any that holds a null, are judged by the standard encoder. orjson is about five
    # times faster, and this runs for every event.
    if encoded is None or b"null" in encoded:
        return _check_metadata_encoded(value, _standard_encoding(value))
    return _check_metadata_encoded(value, encoded)


def _standard_encoding(value: dict[str, Any]) -> bytes | None:
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (ValueError, RecursionError):
        return None
    try:
        return text.encode()
    except UnicodeEncodeError:
        raise ValueError(BAD_CHARACTERS) from None


def _check_metadata_encoded(value: dict[str, Any], encoded: bytes | None) -> dict[str, Any]:
    # The walk names the offending path; it runs only when the encoder refused the
    # value or when there are enough brackets for it to nest too deep (rarely: the
    # encoder is C, the walk Python).
    if encoded is None or encoded.count(b"[") + encoded.count(b"{") > METADATA_MAX_DEPTH:
        _check_tree(value)
    if b"\\u0000" in encoded:
        raise ValueError(BAD_CHARACTERS)
    limit = hot_settings.FLYWHEEL_METADATA_MAX_BYTES
    if len(encoded) > limit:
        raise ValueError(METADATA_TOO_LARGE.format(limit=limit))
    return value


def _feedback_value(value: Any) -> int | str | None:
    # One check instead of a union: a union's errors name its branches
    # ("value.int", "value.function-after[...]"), and lax int would take true as 1.
    value = _integral(value)
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, str):
        return _check_text(_storable(value))
    raise PydanticCustomError("value_type", VALUE_TYPE)


FeedbackValue = Annotated[
    Any,
    AfterValidator(_feedback_value),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}],
            "description": "kind=rating: an integer from 1 to 5 (required). kind=comment: "
            "the comment, a string with a non-blank character (required). Other kinds: "
            "optional; a string is kept as a comment.",
        }
    ),
]


# Metadata in the OpenAPI schema: any JSON object without NUL characters, recursive
# through a component that the API adds (pydantic has no model for "any JSON").
JSON_VALUE_COMPONENT = "JsonValue"
_NO_NUL_NAMES = {"pattern": "^[^\\u0000]*$"}
JSON_REF = {"$ref": f"#/components/schemas/{JSON_VALUE_COMPONENT}"}
# Pydantic drops a $ref it did not make; the API swaps this marker for JSON_REF.
JSON_REF_MARKER = {"x-json-value": True}
JSON_SCHEMAS = {
    JSON_VALUE_COMPONENT: {
        "description": "Any JSON value without NUL characters in its strings.",
        "anyOf": [
            {"type": ["null", "boolean", "number"]},
            {"type": "string", **_NO_NUL_NAMES},
            {"type": "array", "items": JSON_REF},
            {"type": "object", "propertyNames": _NO_NUL_NAMES, "additionalProperties": JSON_REF},
        ],
    }
}
Metadata = Annotated[
    dict[str, Any],
    WithJsonSchema(
        {
            "type": "object",
            "propertyNames": _NO_NUL_NAMES,
            "additionalProperties": JSON_REF_MARKER,
            "description": "Free-form JSON object: at most FLYWHEEL_METADATA_MAX_BYTES "
            f"(default 16384) bytes as JSON, at most {METADATA_MAX_DEPTH} levels deep, finite "
            "numbers only, no NUL characters. PII is redacted in keys and values.",
        }
    ),
]


class Strict(BaseModel):
    # Unknown fields are an error: a typo such as "respones" must not be dropped silently.
    model_config = ConfigDict(extra="forbid")


class Message(Strict):
    role: Literal["system", "user", "assistant", "tool"]
    content: LongText
    name: ShortStr | None = None


class Usage(Strict):
    prompt_tokens: Count | None = None
    completion_tokens: Count | None = None
    total_tokens: Count | None = None


class InteractionIn(Strict):
    event_id: EventId
    occurred_at: Timestamp | None = None
    model: ShortStr = ""
    task_type: LabelStr = ""
    messages: list[Message] = Field(min_length=1)
    response: LongText
    usage: Usage | None = None
    latency_ms: Count | None = None
    user_id: UserId | None = Field(
        default=None, description="End-user id; stored only as a keyed hash."
    )
    session_id: ShortStr = ""
    segment: LabelStr = ""
    metadata: Metadata = Field(default_factory=dict)

    _metadata = field_validator("metadata")(_check_metadata)


def _when_kind(kinds: list[str], field: str, rule: dict) -> dict:
    return {
        "if": {"properties": {"kind": {"enum": kinds}}, "required": ["kind"]},
        "then": {"properties": {field: rule}, "required": [field]},
    }


# Non-blank, as str.strip() reads it.
_NOT_BLANK = {"type": "string", "pattern": "\\S"}


class FeedbackIn(Strict):
    # The rules that depend on `kind`, stated in the schema as well as enforced in
    # _kind_rules, so that clients and generated tests see the same contract.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "description": "kind=rating needs an integer value 1-5; kind=comment needs a "
            "non-blank string value; kind=edited and kind=corrected need a non-blank "
            "final_text.",
            "allOf": [
                _when_kind(["rating"], "value", {"type": "integer", "minimum": 1, "maximum": 5}),
                _when_kind(["comment"], "value", _NOT_BLANK),
                _when_kind(["edited", "corrected"], "final_text", _NOT_BLANK),
            ],
        },
    )

    event_id: EventId
    interaction_event_id: EventId
    kind: Kind
    value: FeedbackValue = None
    final_text: LongText | None = Field(
        default=None, description="The user's version of the output (edited, corrected)."
    )
    occurred_at: Timestamp | None = None
    user_id: UserId | None = None
    metadata: Metadata = Field(default_factory=dict)

    _metadata = field_validator("metadata")(_check_metadata)

    @model_validator(mode="after")
    def _kind_rules(self) -> "FeedbackIn":
        # Reported on the field that breaks the rule (the error's path), not the body.
        if self.kind == FeedbackKind.RATING and not (
            isinstance(self.value, int) and 1 <= self.value <= 5
        ):
            raise PydanticCustomError("kind_rule", RATING_REQUIRED, {"path": ("value",)})
        if self.kind == FeedbackKind.COMMENT and (
            not isinstance(self.value, str) or not self.value.strip()
        ):
            raise PydanticCustomError("kind_rule", COMMENT_REQUIRED, {"path": ("value",)})
        if self.kind in (FeedbackKind.EDITED, FeedbackKind.CORRECTED) and not (
            self.final_text and self.final_text.strip()
        ):
            raise PydanticCustomError("kind_rule", FINAL_TEXT_REQUIRED, {"path": ("final_text",)})
        return self


# The placeholder rule (`_check_not_placeholder`) in the schema, as a description: a pattern
# cannot say "a letter or digit" as str.isalnum() means it in every reader (ECMA-262's \w,
# and schemathesis's, are ASCII only, which would refuse an edit written in Japanese).
_NOT_PLACEHOLDER = Field(
    description="Unless empty, must hold a letter or digit (any script): a placeholder "
    "such as '...' is refused."
)


class EditIn(Strict):
    prompt: Annotated[Text, StringConstraints(min_length=1)]
    original_llm_output: Annotated[Text, _NOT_PLACEHOLDER]
    final_user_edit: Annotated[Text, StringConstraints(min_length=1), _NOT_PLACEHOLDER]
    event_id: EventId | None = None
    model: ShortStr = ""
    task_type: LabelStr = ""
    occurred_at: Timestamp | None = None
    user_id: UserId | None = None
    metadata: Metadata = Field(default_factory=dict)

    _texts = field_validator("prompt", "original_llm_output", "final_user_edit")(_check_text)
    _placeholders = field_validator("original_llm_output", "final_user_edit")(
        _check_not_placeholder
    )
    _metadata = field_validator("metadata")(_check_metadata)


class BatchIn(Strict):
    # Items are validated one by one in the service, so one bad item does not
    # reject the batch; here they are only required to be JSON objects.
    interactions: list[dict[str, Any]] = Field(default_factory=list)
    feedback: list[dict[str, Any]] = Field(default_factory=list)
    edits: list[dict[str, Any]] = Field(default_factory=list)


class ItemResult(BaseModel):
    index: int
    kind: Literal["interaction", "feedback", "edit"]
    status: Literal["created", "duplicate", "rejected"]
    id: int | None = None
    feedback_id: int | None = None
    errors: list[dict[str, str]] = Field(default_factory=list)


class IngestResult(BaseModel):
    status: Literal["created", "duplicate"]
    id: int
    feedback_id: int | None = None
    linked: bool | None = None


class BatchResult(BaseModel):
    created: int
    duplicate: int
    rejected: int
    results: list[ItemResult]


def field_errors(errors: list[dict], *, skip: int = 0, prefix: str = "") -> list[dict[str, str]]:
    """Pydantic errors as `{"field": "a.b", "message": ...}`: paths and messages only,
    never the submitted values. `skip` drops leading location parts (ninja's
    ("body", "<param>")); a nested path found by a validator (metadata) is appended;
    a rule on the whole object is reported on `prefix`, or on "body"."""
    out = []
    for item in errors:
        loc = [prefix] if prefix else []
        loc += [str(part) for part in item.get("loc", ())][skip:]
        loc += (item.get("ctx") or {}).get("path", ())
        message = str(item.get("msg", "")).removeprefix("Value error, ")
        out.append({"field": ".".join(loc) or "body", "message": message})
    return out
