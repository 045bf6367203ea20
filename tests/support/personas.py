"""The people tests log in as: one user per role, all with the same password."""

from django.contrib.auth.models import Group, User

PASSWORD = "correct-horse-battery"


def person(username: str, role: str | None) -> User:
    user = User.objects.create_user(username=username, password=PASSWORD)
    if role:
        # get_or_create: transactional tests flush every table, the groups migrations made too.
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user
