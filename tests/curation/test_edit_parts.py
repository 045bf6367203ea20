"""An edit's interaction and feedback are built without validating them again
(`ingest_rows.edit_parts`): that is sound only while every EditIn that validates gives
parts that validate too, with the same values. Checked here on edits hypothesis draws
from the ingest rules' edges: blank-padded ids, unicode, long texts, metadata, offsets."""

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from curation.ingest_rows import edit_parts
from curation.schemas import EditIn, FeedbackIn, InteractionIn

REFERENCE = datetime(2026, 6, 1, tzinfo=UTC)

texts = st.text(min_size=1, max_size=300)
raw_edits = st.fixed_dictionaries(
    {
        "prompt": texts,
        "original_llm_output": st.text(max_size=300),
        "final_user_edit": texts,
    },
    optional={
        "event_id": st.text(max_size=40),
        "model": st.text(max_size=40),
        "task_type": st.text(max_size=20),
        "occurred_at": st.datetimes(
            min_value=datetime(2001, 1, 1), max_value=datetime(2026, 1, 1)
        ).map(lambda d: d.isoformat() + "+05:30"),
        "user_id": st.text(max_size=40),
        "metadata": st.dictionaries(
            st.text(max_size=10), st.one_of(st.text(max_size=20), st.integers()), max_size=4
        ),
    },
)


@settings(max_examples=300, deadline=None)
@given(raw_edits)
def test_the_parts_of_a_valid_edit_validate_to_themselves(raw):
    try:
        edit = EditIn.model_validate(raw)
    except ValidationError:
        return  # only edits that validate are ever split
    interaction, feedback = edit_parts(edit)
    for part, schema in ((interaction, InteractionIn), (feedback, FeedbackIn)):
        dumped = part.model_dump()
        again = schema.model_validate(dumped)
        assert again.model_dump() == dumped


def test_an_edit_is_an_interaction_and_its_edited_feedback():
    edit = EditIn.model_validate(
        {
            "prompt": "Fix the query",
            "original_llm_output": "SELECT * FROM t",
            "final_user_edit": "SELECT id FROM t",
            "event_id": "e1",
            "user_id": "u1",
            "occurred_at": (REFERENCE - timedelta(hours=1)).isoformat(),
            "metadata": {"app": "x"},
        }
    )
    interaction, feedback = edit_parts(edit)
    assert interaction.event_id == feedback.event_id == feedback.interaction_event_id == "e1"
    assert [(m.role, m.content) for m in interaction.messages] == [("user", "Fix the query")]
    assert interaction.response == "SELECT * FROM t"
    assert interaction.metadata == {"app": "x"}
    assert (feedback.kind, feedback.final_text, feedback.value) == (
        "edited",
        "SELECT id FROM t",
        None,
    )
    assert type(feedback.kind) is str  # written to the database and the rollup as is
    assert interaction.occurred_at == feedback.occurred_at == REFERENCE - timedelta(hours=1)
