from django import template

from review import presenters
from review.presenters import NONE

register = template.Library()
register.filter("figure", presenters.figure)
register.filter("thin", presenters.is_thin)


@register.filter
def percent(value) -> str:
    """A share in [0, 1] as a whole percentage; an en dash when undefined."""
    if value is None:
        return NONE
    return f"{100 * value:.0f}%"


@register.filter
def seconds(value) -> str:
    if value is None:
        return NONE
    if value < 120:
        return f"{value:.0f} s"
    return f"{value / 60:.1f} min"


@register.filter
def duration(value) -> str:
    """A longer span of seconds as hours and minutes ("about 2 h 05 min")."""
    if value is None:
        return NONE
    minutes = round(value / 60)
    if minutes < 1:
        return "under a minute"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"
