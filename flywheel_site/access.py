"""Who may do what. Roles are Django groups, each including the one below:
annotator < curator < admin. Superusers are admins. Views call these helpers,
which raise PermissionDenied (403) rather than redirecting: a logged-in user
without the role should see that they lack it."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied

from flywheel_site import login

ANNOTATOR = "annotator"
CURATOR = "curator"
ADMIN = "admin"
ROLES = (ANNOTATOR, CURATOR, ADMIN)
FORBIDDEN = "Your role does not allow this page."


def role_of(user) -> str | None:
    """The highest role the user holds, or None."""
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return ADMIN
    cached = getattr(user, "_flywheel_role", ...)
    if cached is not ...:
        return cached
    names = set(user.groups.values_list("name", flat=True))
    role = next((r for r in reversed(ROLES) if r in names), None)
    user._flywheel_role = role
    return role


def has_role(user, role: str) -> bool:
    held = role_of(user)
    return held is not None and ROLES.index(held) >= ROLES.index(role)


def require_role(user, role: str) -> None:
    if not has_role(user, role):
        raise PermissionDenied(FORBIDDEN)


def role_required(role: str):
    """View decorator: anonymous users go to the login page, a logged-in user
    without `role` gets a 403. The one place a view states who may call it."""

    def decorate(view):
        @wraps(view)
        def guarded(request, *args, **kwargs):
            require_role(request.user, role)
            return view(request, *args, **kwargs)

        return login_required(guarded)

    return decorate


def recent_password_required(view):
    """View decorator for an irreversible change: a POST asks for the password again when
    the last proof of it is older than FLYWHEEL_REAUTH_MINUTES, as the Django admin and
    django-rq do (flywheel_site.middleware), so an unattended session cannot make it."""

    @wraps(view)
    def guarded(request, *args, **kwargs):
        if request.method == "POST" and not login.recently_authenticated(request.session):
            return login.reauth_redirect(request.path)
        return view(request, *args, **kwargs)

    return guarded
