from django.contrib import admin

from flywheel_site.audit.models import RetentionRule


@admin.register(RetentionRule)
class RetentionRuleAdmin(admin.ModelAdmin):
    """Retention per source: how many days its interactions and feedback are kept."""

    list_display = ("source", "days")
