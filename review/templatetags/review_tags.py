from django import template

register = template.Library()

NONE = "\u2013"


@register.filter
def percent(value) -> str:
    """A share in [0, 1] as a whole percentage; an en dash when undefined."""
    if value is None:
        return NONE
    return f"{100 * value:.0f}%"


@register.filter
def figure(value, digits: int = 2) -> str:
    """A statistic that may be undefined (agreement on too little data)."""
    if value is None:
        return NONE
    return f"{value:.{int(digits)}f}"


@register.filter
def seconds(value) -> str:
    if value is None:
        return NONE
    if value < 120:
        return f"{value:.0f} s"
    return f"{value / 60:.1f} min"
