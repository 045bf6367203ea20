"""Stored data never makes the admin answer 500: rows whose timestamps Python
cannot hold are readable, ingested traffic is read-only but deletable (and the
delete is history), and no "view on site" link fails."""

from datetime import UTC, date, datetime

import psycopg
import pytest
from django.contrib import admin as django_admin
from django.contrib.contenttypes.models import ContentType
from django.db import connection

from curation.models import Feedback, Interaction
from flywheel_site import db
from tests.support import factories
from tests.support.curation import ingest

pytestmark = pytest.mark.django_db

EXTREMES = (
    "SELECT '0001-01-01 00:00:00+00 BC'::timestamptz, '10000-06-01 00:00:00+00'::timestamptz,"
    " '-infinity'::timestamptz, 'infinity'::timestamp, '0044-03-15 BC'::date,"
    " '20000-01-01'::date, '2026-11-01 12:00:00+00'::timestamptz"
)
CLAMPED = (
    db.EARLIEST.replace(tzinfo=UTC),
    db.LATEST.replace(tzinfo=UTC),
    db.EARLIEST.replace(tzinfo=UTC),
    db.LATEST,
    date.min,
    date.max,
    datetime(2026, 11, 1, 12, tzinfo=UTC),
)


def sql(statement: str, params=None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def test_values_python_cannot_hold_are_read_clamped():
    with connection.cursor() as cursor:
        cursor.execute(EXTREMES)
        assert cursor.fetchone() == CLAMPED


def test_binary_results_are_clamped_too():
    # Django reads text; a server-side cursor or COPY may read binary.
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(EXTREMES, binary=True)
        assert cursor.fetchone() == CLAMPED


def test_other_unreadable_values_still_raise():
    """Clamping is for range only: a value refused for another reason is not
    silently replaced by a date."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL DateStyle = 'SQL, DMY'")
        cursor.execute("SELECT '2026-11-01 12:00:00+00'::timestamptz")
        with pytest.raises(NotImplementedError):
            cursor.fetchone()


# --- the admin over poisoned rows ---------------------------------------------------


@pytest.fixture
def poisoned():
    """An interaction dated 1 BC and feedback dated year 10000, as old data or a
    raw SQL edit would leave them."""
    ingest(
        interactions=[factories.interaction("bad"), factories.interaction("good")],
        feedback=[factories.feedback("bad", "bad-fb", kind="thumbs_down")],
    )
    sql(
        "UPDATE curation_interaction SET occurred_at = '0001-01-01 00:00:00+00 BC'"
        " WHERE event_id = 'bad'"
    )
    sql(
        "UPDATE curation_feedback SET occurred_at = '10000-06-01 00:00:00+00'"
        " WHERE event_id = 'bad-fb'"
    )
    return Interaction.objects.get(event_id="bad"), Feedback.objects.get(event_id="bad-fb")


def test_the_lists_and_change_pages_of_poisoned_rows_answer(admin_client, poisoned):
    interaction = poisoned[0]
    # History holds the poisoned values too (the raw UPDATEs were recorded).
    assert Interaction.pgh_event_model.objects.filter(pgh_obj_id=interaction.pk).exists()
    assert admin_client.get("/admin/pghistory/events/").status_code == 200
    for url in ("/admin/curation/interaction/", "/admin/curation/feedback/"):
        response = admin_client.get(url)
        assert response.status_code == 200
        assert "bad" in response.content.decode()
    for obj in poisoned:
        response = admin_client.get(f"/admin/curation/{obj._meta.model_name}/{obj.pk}/change/")
        assert response.status_code == 200
    body = admin_client.get(f"/admin/curation/interaction/{interaction.pk}/change/").content
    assert b"Jan. 2, 0001" in body  # clamped to the first day Python can show


@pytest.mark.parametrize("model", ["interaction", "feedback"])
def test_ingested_rows_cannot_be_added_or_edited(admin_client, poisoned, model):
    obj = {"interaction": poisoned[0], "feedback": poisoned[1]}[model]
    changelist = admin_client.get(f"/admin/curation/{model}/").content.decode()
    assert f"/admin/curation/{model}/add/" not in changelist
    assert admin_client.get(f"/admin/curation/{model}/add/").status_code == 403
    assert admin_client.post(f"/admin/curation/{model}/add/", {}).status_code == 403
    change = admin_client.get(f"/admin/curation/{model}/{obj.pk}/change/").content.decode()
    assert 'name="_save"' not in change  # shown read-only
    before = Interaction.objects.values("messages", "response").get(pk=poisoned[0].pk)
    response = admin_client.post(
        f"/admin/curation/{model}/{obj.pk}/change/",
        {"response": "rewritten", "messages": "[]", "comment": "rewritten"},
    )
    assert response.status_code == 403
    assert Interaction.objects.values("messages", "response").get(pk=poisoned[0].pk) == before


def test_an_admin_deletes_poisoned_rows_and_history_records_it(admin_client, admin_user, poisoned):
    interaction, feedback = poisoned
    for obj in (feedback, interaction):  # feedback first: it protects its interaction
        url = f"/admin/curation/{obj._meta.model_name}/{obj.pk}/delete/"
        assert admin_client.get(url).status_code == 200
        assert admin_client.post(url, {"post": "yes"}).status_code == 302
        assert not type(obj).objects.filter(pk=obj.pk).exists()
        event = type(obj).pgh_event_model.objects.get(pgh_obj_id=obj.pk, pgh_label="delete")
        assert event.event_id == obj.event_id
        assert event.pgh_context.metadata["user"] == admin_user.pk


def test_the_admins_bulk_delete_action_works_on_poisoned_rows(admin_client, poisoned):
    feedback = poisoned[1]
    response = admin_client.post(
        "/admin/curation/feedback/",
        {"action": "delete_selected", "_selected_action": [feedback.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Feedback.objects.filter(pk=feedback.pk).exists()


def test_no_view_on_site_link_answers_500(admin_client, poisoned, ingest_token):
    """Every registered admin: its change page for a stored row has no "view on
    site" button, and Django's view-on-site redirect never errors."""
    checked = 0
    for model in django_admin.site._registry:
        if not model._meta.managed:
            continue  # views over other data (RQ queues, history events): no rows of their own
        obj = model._default_manager.order_by("pk").first()
        if obj is None:
            continue
        info = model._meta.app_label, model._meta.model_name
        change = admin_client.get(f"/admin/{info[0]}/{info[1]}/{obj.pk}/change/")
        assert change.status_code in (200, 302, 403, 404), (model, change.status_code)
        assert b"viewsitelink" not in change.content, model
        content_type = ContentType.objects.get_for_model(model, for_concrete_model=False)
        shortcut = admin_client.get(f"/admin/r/{content_type.pk}/{obj.pk}/")
        assert shortcut.status_code in (302, 404), (model, shortcut.status_code)
        checked += 1
    assert checked >= 4  # users, sources, tokens, interactions, feedback at least
    # The poisoned rows themselves, by their content type.
    for obj in poisoned:
        content_type = ContentType.objects.get_for_model(obj)
        assert admin_client.get(f"/admin/r/{content_type.pk}/{obj.pk}/").status_code == 404
