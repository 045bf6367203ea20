"""Staff is not a role: the Django admin and django-rq ask for the admin role, so a user
with Django's staff flag and no Flywheel role reaches neither (issue 18, row 4)."""

import django_rq
import pytest
from django.contrib.auth.models import User

from flywheel_site.access import FORBIDDEN

pytestmark = pytest.mark.django_db

PAGES = [
    "/admin/",
    "/admin/curation/interaction/",
    "/admin/auth/user/",
    "/admin/auth/user/add/",
    "/django-rq/",
    "/django-rq/queues/0/",
    "/django-rq/queues/0/finished/",
    "/django-rq/queues/0/failed/",
]


@pytest.fixture
def staff_only(db):
    return User.objects.create_user(username="stella", password="x" * 16, is_staff=True)


@pytest.mark.parametrize("path", PAGES)
def test_a_staff_user_without_the_admin_role_is_refused(client, staff_only, path):
    client.force_login(staff_only)
    response = client.get(path)
    assert response.status_code == 403
    assert FORBIDDEN in response.content.decode()


def test_a_staff_user_cannot_empty_a_queue(client, staff_only):
    queue = django_rq.get_queue("default", commit_mode="auto")
    queue.enqueue("builtins.print", "kept")
    client.force_login(staff_only)
    response = client.post("/django-rq/queues/0/empty/", {"post": "yes"})
    assert response.status_code == 403
    assert queue.count == 1


def test_a_staff_admin_still_reaches_both(client, admin):
    admin.is_staff = True
    admin.save(update_fields=["is_staff"])
    client.force_login(admin)
    assert client.get("/admin/").status_code == 200
    assert client.get("/django-rq/").status_code == 200
