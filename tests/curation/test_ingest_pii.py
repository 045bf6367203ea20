"""PII is stripped before anything is stored, on every path into storage."""

import json

import pytest

from curation.models import Feedback, Interaction
from tests.support import factories

pytestmark = pytest.mark.django_db

EMAIL = "jane.doe@example.com"
PHONE = "+1 415 555 2671"
CARD = "4111 1111 1111 1111"


# The columns that hold what users wrote. Ids, event ids and hashes are left out: they are
# digits and hex, and an id such as 24111 (the sequence's value, which depends on the tests
# run before) holds "4111" without any card in it.
INTERACTION_TEXT = (
    "messages",
    "response",
    "usage",
    "metadata",
    "model",
    "task_type",
    "session_id",
    "segment",
)
FEEDBACK_TEXT = ("comment", "final_text", "metadata")


def stored_text() -> str:
    rows = [
        *Interaction.objects.values(*INTERACTION_TEXT),
        *Feedback.objects.values(*FEEDBACK_TEXT),
    ]
    return json.dumps(rows, default=str)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/api/v1/interactions",
            factories.interaction(
                "m", messages=[{"role": "user", "content": f"mail me at {EMAIL}"}]
            ),
        ),
        ("/api/v1/interactions", factories.interaction("r", response=f"Call {PHONE} today.")),
        ("/api/v1/interactions", factories.interaction("md", metadata={"note": {"deep": [EMAIL]}})),
        (
            "/api/v1/feedback",
            factories.feedback("x", "fe", kind="edited", final_text=f"Pay with {CARD}"),
        ),
        ("/api/v1/feedback", factories.feedback("x", "fc", kind="comment", value=f"I am {EMAIL}")),
        ("/api/v1/feedback", factories.feedback("x", "fm", metadata={"who": EMAIL})),
        (
            "/api/v1/edits",
            factories.edit(
                prompt=f"Reply to {EMAIL}",
                original_llm_output=f"Call {PHONE}",
                final_user_edit=f"Card {CARD} is fine",
            ),
        ),
        (
            "/api/v1/batch",
            {
                "interactions": [factories.interaction("b", response=EMAIL)],
                "feedback": [factories.feedback("b", "bf", kind="comment", value=PHONE)],
                "edits": [factories.edit(final_user_edit=f"mail {EMAIL}")],
            },
        ),
    ],
    ids=[
        "messages",
        "response",
        "metadata",
        "final_text",
        "comment",
        "feedback-metadata",
        "edit",
        "batch",
    ],
)
def test_pii_never_reaches_the_database(api, path, body):
    response = api.post(path, body)
    assert response.status_code in (200, 201), response.content
    text = stored_text()
    for value in (EMAIL, PHONE, CARD, "jane.doe", "4111"):
        assert value not in text
    assert "[EMAIL]" in text or "[PHONE]" in text or "[CARD]" in text


def test_redaction_is_counted_on_the_row_and_harmless_numbers_survive(api):
    body = factories.interaction(
        "c",
        messages=[{"role": "user", "content": f"I'm {EMAIL}, on v2.3.1 since 2024-01-15"}],
        response=f"We will call {PHONE} about order 123456 at 10:30.",
    )
    api.post("/api/v1/interactions", body)
    row = Interaction.objects.get()
    assert row.pii == {"email": 1, "phone": 1}
    assert "v2.3.1 since 2024-01-15" in row.messages[0]["content"]
    assert "order 123456 at 10:30" in row.response
