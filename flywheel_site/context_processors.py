from flywheel_site.access import ADMIN, ANNOTATOR, CURATOR, has_role
from flywheel_site.demo.progress import progress_get


def roles(request):
    user = getattr(request, "user", None)
    if user is None:
        return {}
    return {
        "is_annotator": has_role(user, ANNOTATOR),
        "is_curator": has_role(user, CURATOR),
        "is_admin": has_role(user, ADMIN),
    }


def demo_loading(request):
    """The demo's training cycles still running in the background (`make run` serves first):
    every page of a signed-in user says how far they are."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"demo_loading": progress_get()}
