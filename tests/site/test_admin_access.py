import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/admin/", "/admin/curation/interaction/", "/django-rq/"])
@pytest.mark.parametrize("persona", ["annotator", "curator", "outsider"])
def test_non_staff_users_get_a_403_on_admin_pages(as_user, request, url, persona):
    response = as_user(request.getfixturevalue(persona)).get(url)
    assert response.status_code == 403


@pytest.mark.parametrize("url", ["/admin/", "/django-rq/"])
def test_anonymous_visitors_are_sent_to_the_admin_login(client, url):
    response = client.get(url)
    assert response.status_code == 302


def test_staff_admins_reach_the_django_admin(admin_client):
    assert admin_client.get("/admin/curation/interaction/").status_code == 200
