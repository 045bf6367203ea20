"""Ingest payload shapes. Pydantic validates them; the OpenAPI schema at
/api/v1/openapi.json is generated from these classes.

They derive from pydantic's BaseModel, not ninja's Schema: Schema wraps every
value in a DjangoGetter (made for reading ORM objects) and, with extra="forbid",
validates each model twice, nested models four times. On a 500-event batch
that was about a third of the request's CPU; plain pydantic is what ninja
accepts for bodies and responses all the same."""

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from django.conf import settings
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from curation.models import FeedbackKind

BAD_CHARACTERS = "text must not contain NUL characters or unpaired surrogates"


def _storable(value: str) -> str:
    # PostgreSQL text and jsonb cannot hold NUL, and UTF-8 cannot encode lone
    # surrogates: refuse them here so a batch never fails halfway in the database.
    if "\x00" in value:
        raise ValueError(BAD_CHARACTERS)
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValueError(BAD_CHARACTERS) from None
    return value


Text = Annotated[str, AfterValidator(_storable)]
EventId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_storable),
]
ShortStr = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=200), AfterValidator(_storable)
]
LabelStr = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=100), AfterValidator(_storable)
]
UserId = Annotated[str, StringConstraints(max_length=500), AfterValidator(_storable)]
Kind = Literal[tuple(FeedbackKind.values)]  # type: ignore[valid-type]

METADATA_TOO_LARGE = "metadata must serialise to at most {limit} bytes of JSON"
TEXT_TOO_LONG = "text must be at most {limit} characters"
RATING_REQUIRED = "a rating needs an integer value from 1 to 5"
COMMENT_REQUIRED = "a comment needs a non-empty string value"
FINAL_TEXT_REQUIRED = "final_text is required for edited and corrected feedback"


def _check_text(value: str) -> str:
    limit = settings.FLYWHEEL_TEXT_MAX_CHARS
    if len(value) > limit:
        raise ValueError(TEXT_TOO_LONG.format(limit=limit))
    return value


def _check_metadata(value: dict[str, Any]) -> dict[str, Any]:
    limit = settings.FLYWHEEL_METADATA_MAX_BYTES
    encoded = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if "\\u0000" in encoded:
        raise ValueError(BAD_CHARACTERS)
    try:
        size = len(encoded.encode())
    except UnicodeEncodeError:
        raise ValueError(BAD_CHARACTERS) from None
    if size > limit:
        raise ValueError(METADATA_TOO_LARGE.format(limit=limit))
    return value


class Strict(BaseModel):
    # Unknown fields are an error: a typo such as "respones" must not be dropped silently.
    model_config = ConfigDict(extra="forbid")


class Message(Strict):
    role: Literal["system", "user", "assistant", "tool"]
    content: Text
    name: ShortStr | None = None

    _content = field_validator("content")(_check_text)


class Usage(Strict):
    prompt_tokens: int | None = Field(default=None, ge=0)
    completion_tokens: int | None = Field(default=None, ge=0)
    total_tokens: int | None = Field(default=None, ge=0)


class InteractionIn(Strict):
    event_id: EventId
    occurred_at: datetime | None = Field(
        default=None, description="When the model answered; naive times are UTC; default now."
    )
    model: ShortStr = ""
    task_type: LabelStr = ""
    messages: list[Message] = Field(min_length=1)
    response: Text
    usage: Usage | None = None
    latency_ms: int | None = Field(default=None, ge=0)
    user_id: UserId | None = Field(
        default=None, description="End-user id; stored only as a keyed hash."
    )
    session_id: ShortStr = ""
    segment: LabelStr = ""
    metadata: dict[str, Any] = Field(default_factory=dict)

    _response = field_validator("response")(_check_text)
    _metadata = field_validator("metadata")(_check_metadata)


class FeedbackIn(Strict):
    event_id: EventId
    interaction_event_id: EventId
    kind: Kind
    value: int | Text | None = Field(
        default=None, description="1-5 for kind=rating; the text for kind=comment."
    )
    final_text: Text | None = Field(
        default=None, description="The user's version of the output (edited, corrected)."
    )
    occurred_at: datetime | None = None
    user_id: UserId | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    _metadata = field_validator("metadata")(_check_metadata)

    @field_validator("final_text")
    @classmethod
    def _final_text(cls, value: str | None) -> str | None:
        return None if value is None else _check_text(value)

    @model_validator(mode="after")
    def _kind_rules(self) -> "FeedbackIn":
        if self.kind == FeedbackKind.RATING:
            if isinstance(self.value, bool) or not isinstance(self.value, int):
                raise ValueError(RATING_REQUIRED)
            if not 1 <= self.value <= 5:
                raise ValueError(RATING_REQUIRED)
        if self.kind == FeedbackKind.COMMENT and (
            not isinstance(self.value, str) or not self.value.strip()
        ):
            raise ValueError(COMMENT_REQUIRED)
        if self.kind in (FeedbackKind.EDITED, FeedbackKind.CORRECTED) and not (
            self.final_text and self.final_text.strip()
        ):
            raise ValueError(FINAL_TEXT_REQUIRED)
        return self


class EditIn(Strict):
    prompt: Annotated[Text, StringConstraints(min_length=1)]
    original_llm_output: Text
    final_user_edit: Annotated[Text, StringConstraints(min_length=1)]
    event_id: EventId | None = None
    model: ShortStr = ""
    task_type: LabelStr = ""
    occurred_at: datetime | None = None
    user_id: UserId | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    _texts = field_validator("prompt", "original_llm_output", "final_user_edit")(_check_text)
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


class ErrorOut(BaseModel):
    error: str
    message: str
    errors: list[dict[str, str]] = Field(default_factory=list)
