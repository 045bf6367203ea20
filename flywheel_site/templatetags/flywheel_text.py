"""Template filters over curation.text: `{% load flywheel_text %}` then
`{{ answer|markdown }}`, `{{ item.stratum|stratum_label }}`, `{{ run.method|key_label }}`."""

from django import template

from curation import text

register = template.Library()

register.filter("markdown", text.render_markdown)
register.filter("stratum_label", text.stratum_label)
register.filter("key_label", text.key_label)
