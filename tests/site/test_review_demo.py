"""The demo accounts can use the review app: `make run` then log in as annotator."""

import pytest
from django.contrib.auth import get_user_model

from flywheel_site.access import ADMIN, ANNOTATOR, CURATOR, role_of
from flywheel_site.demo import accounts

pytestmark = pytest.mark.django_db


def test_the_demo_accounts_join_their_role_groups():
    accounts.demo_users_create(
        admin_password=accounts.DEFAULT_ADMIN_PASSWORD,
        annotator_password=accounts.DEFAULT_ANNOTATOR_PASSWORD,
        curator_password=accounts.DEFAULT_CURATOR_PASSWORD,
    )
    users = get_user_model().objects
    annotator = users.get(username=accounts.ANNOTATOR_USERNAME)
    admin = users.get(username=accounts.ADMIN_USERNAME)
    assert role_of(annotator) == ANNOTATOR
    assert role_of(users.get(username=accounts.CURATOR_USERNAME)) == CURATOR
    assert list(admin.groups.values_list("name", flat=True)) == [ADMIN]


def test_the_demo_annotator_can_open_the_queue(client):
    accounts.demo_users_create(
        admin_password=accounts.DEFAULT_ADMIN_PASSWORD,
        annotator_password=accounts.DEFAULT_ANNOTATOR_PASSWORD,
        curator_password=accounts.DEFAULT_CURATOR_PASSWORD,
    )
    response = client.post(
        "/login/",
        {"username": accounts.ANNOTATOR_USERNAME, "password": accounts.DEFAULT_ANNOTATOR_PASSWORD},
        follow=True,
    )
    assert response.redirect_chain[-1] == ("/review/", 302)
    assert "Start reviewing" in response.content.decode()
