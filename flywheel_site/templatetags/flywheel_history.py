"""`{% load flywheel_history %}{% history_timeline obj other_obj rows %}`: the audit timeline
of those rows (flywheel_site.audit.history.object_history) on the page that shows them. Shown to
curators and admins only: an annotator's screen must not name other reviewers."""

from django import template

from flywheel_site.access import CURATOR, has_role
from flywheel_site.audit.history import object_history

register = template.Library()


@register.inclusion_tag("_history.html", takes_context=True)
def history_timeline(context, *objs):
    request = context.get("request")
    if request is None or not has_role(request.user, CURATOR):
        return {"shown": False}
    return {"shown": True, "entries": object_history(*objs)}
