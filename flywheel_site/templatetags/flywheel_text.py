"""Template filters over flywheel_site.text_render: `{% load flywheel_text %}` then
`{{ answer|markdown }}`, `{{ item.stratum|stratum_label }}`, `{{ run.method|key_label }}`."""

from django import template

from flywheel_site import text_render

register = template.Library()

register.filter("markdown", text_render.render_markdown)
register.filter("stratum_label", text_render.stratum_label)
register.filter("key_label", text_render.key_label)
register.filter("iso_when", text_render.iso_when)
