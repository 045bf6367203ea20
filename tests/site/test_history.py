"""Audit history: trigger-based, so ORM, bulk and raw SQL changes are captured
with the acting user or token and the request path."""

import pytest
from django.db import connection

from curation.models import ApiToken, Interaction
from tests.support import factories

pytestmark = pytest.mark.django_db


def events(model):
    return model.pgh_event_model.objects.order_by("pgh_id")


def test_an_interaction_update_is_recorded_with_its_old_content(api):
    api.post("/api/v1/interactions", factories.interaction("h1", response="before"))
    interaction = Interaction.objects.get()
    assert events(Interaction).count() == 0  # inserts are the record itself
    Interaction.objects.filter(pk=interaction.pk).update(response="after")
    event = events(Interaction).get()
    assert event.pgh_label == "update"
    assert event.response == "after"
    assert event.pgh_obj_id == interaction.pk


def test_raw_sql_deletes_are_captured_too(api):
    api.post("/api/v1/interactions", factories.interaction("h1"))
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM curation_interaction")
    assert [e.pgh_label for e in events(Interaction)] == ["delete"]


def test_curation_bookkeeping_is_not_history(api):
    api.post("/api/v1/interactions", factories.interaction("h1"))
    Interaction.objects.update(curation_state="done")
    assert events(Interaction).count() == 0


def test_changes_made_in_a_request_carry_the_user_and_path(admin_client, admin_user, ingest_token):
    token, _ = ingest_token
    response = admin_client.post(
        "/admin/curation/apitoken/", {"action": "revoke", "_selected_action": [token.pk]}
    )
    assert response.status_code == 302
    event = events(ApiToken).filter(pgh_label="update").get()
    assert event.revoked_at is not None
    assert event.pgh_context.metadata["user"] == admin_user.pk
    assert event.pgh_context.metadata["url"] == "/admin/curation/apitoken/"


def test_changes_made_through_the_api_carry_the_token(api, ingest_token):
    token, _ = ingest_token
    api.post("/api/v1/feedback", factories.feedback("h9", "fh9"))
    # Linking the early feedback is an update made in the token's request.
    api.post("/api/v1/interactions", factories.interaction("h9"))
    from curation.models import Feedback

    event = Feedback.pgh_event_model.objects.get()
    assert event.interaction_id is not None
    assert event.pgh_context.metadata["token"] == token.pk
    assert event.pgh_context.metadata["url"] == "/api/v1/interactions"
