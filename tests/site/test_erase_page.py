"""/audit/erase/: the erasure page runs the same service as erase_user, for admins only;
hostile input is a 400 that erases nothing."""

import pytest

from curation.ingest_rows import user_hash
from curation.models import Interaction
from flywheel_site.audit.models import Erasure
from tests.support.curation import ingest, no_toxicity
from tests.support.factories import interaction

pytestmark = pytest.mark.django_db

PAGE = "/audit/erase/"


def test_an_admin_erases_a_user_and_sees_the_record(client, admin):
    no_toxicity()
    ingest(interactions=[interaction("e1", user_id="carol"), interaction("e2", user_id="dave")])
    client.force_login(admin)
    response = client.post(PAGE, {"user_id": "carol"}, follow=True)
    assert response.status_code == 200
    erasure = Erasure.objects.get()
    assert f"Recorded as erasure #{erasure.pk}." in response.content.decode()
    assert f'id="erasure-{erasure.pk}"' in response.content.decode()
    assert not Interaction.objects.filter(user_hash=user_hash("carol")).exists()
    assert Interaction.objects.filter(user_hash=user_hash("dave")).exists()
    assert "carol" not in str(erasure.counts)


@pytest.mark.parametrize("user_id", ["", "   ", "x" * 1001])
def test_hostile_input_is_a_400_and_erases_nothing(client, admin, user_id):
    no_toxicity()
    ingest(interactions=[interaction("e1", user_id="carol")])
    client.force_login(admin)
    response = client.post(PAGE, {"user_id": user_id})
    assert response.status_code == 400
    assert 'id="erase-error"' in response.content.decode()
    assert Interaction.objects.count() == 1
    assert not Erasure.objects.exists()


def test_a_curator_may_not_erase(client, curator):
    no_toxicity()
    ingest(interactions=[interaction("e1", user_id="carol")])
    client.force_login(curator)
    assert client.post(PAGE, {"user_id": "carol"}).status_code == 403
    assert Interaction.objects.count() == 1
