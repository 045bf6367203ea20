from django.contrib import admin

from curation.models import ApiToken, Feedback, Interaction, Source
from curation.tokens import api_tokens_changed, api_tokens_revoke


class TokensChangedAdmin(admin.ModelAdmin):
    """Web processes cache tokens with their source (curation.tokens): every change made
    here tells them."""

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        api_tokens_changed()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        api_tokens_changed()

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset)
        api_tokens_changed()


class IngestedAdmin(admin.ModelAdmin):
    """Traffic as the ingest API stored it: viewable and deletable (pghistory
    records the delete), never added or edited here. An admin form would write
    raw JSON past the API's validation and PII redaction."""

    # No model here has a public page; the button would lead to a 404.
    view_on_site = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Source)
class SourceAdmin(TokensChangedAdmin):
    view_on_site = False
    list_display = ("name", "created_at")
    search_fields = ("name",)


@admin.register(ApiToken)
class ApiTokenAdmin(TokensChangedAdmin):
    view_on_site = False
    list_display = ("name", "source", "hint", "scopes", "created_at", "last_used_at", "revoked_at")
    list_filter = ("source",)
    readonly_fields = ("hint", "created_at", "last_used_at")
    fields = ("source", "name", "scopes", "hint", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def has_add_permission(self, request):
        # The clear token is shown once by `manage.py create_api_token`; an admin
        # form has nowhere safe to show it.
        return False

    @admin.action(description="Revoke selected tokens (takes effect on the next request)")
    def revoke(self, request, queryset):
        count = api_tokens_revoke(tokens=queryset)
        self.message_user(request, f"Revoked {count} token(s).")


@admin.register(Interaction)
class InteractionAdmin(IngestedAdmin):
    list_display = ("event_id", "source", "model", "task_type", "occurred_at", "curation_state")
    list_filter = ("source", "task_type", "curation_state")
    search_fields = ("event_id",)
    # A million-row table: no COUNT(*) per page, no joins for the filter sidebar.
    show_full_result_count = False
    list_select_related = ("source",)
    raw_id_fields = ("source",)
    date_hierarchy = None


@admin.register(Feedback)
class FeedbackAdmin(IngestedAdmin):
    list_display = ("event_id", "source", "kind", "interaction_event_id", "occurred_at")
    list_filter = ("kind", "source")
    search_fields = ("event_id", "interaction_event_id")
    show_full_result_count = False
    list_select_related = ("source",)
    raw_id_fields = ("source", "interaction")
