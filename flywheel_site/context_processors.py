from flywheel_site.access import ADMIN, ANNOTATOR, CURATOR, has_role


def roles(request):
    user = getattr(request, "user", None)
    if user is None:
        return {}
    return {
        "is_annotator": has_role(user, ANNOTATOR),
        "is_curator": has_role(user, CURATOR),
        "is_admin": has_role(user, ADMIN),
    }
