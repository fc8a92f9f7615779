"""Admin: read-mostly views of marketplace data; status never changes here except through services."""

from django.contrib import admin

from marketplace.models import (
    AccessGrant,
    Dataset,
    DatasetFile,
    GrantDownload,
    Membership,
    Organisation,
    OrganisationMechanism,
    Settlement,
    Trade,
    TradeDocument,
    TradeEvent,
)


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ["name", "jurisdiction", "kind", "is_operator"]
    search_fields = ["name"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organisation", "role"]
    list_select_related = ["user", "organisation"]


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["title", "provider", "classification", "status", "price", "currency"]
    list_filter = ["status", "classification"]
    list_select_related = ["provider"]
    search_fields = ["title"]
    readonly_fields = ["status", "published_at"]


class TradeEventInline(admin.TabularInline):
    model = TradeEvent
    extra = 0
    can_delete = False
    readonly_fields = ["at", "from_status", "to_status", "actor_label", "reason"]
    fields = readonly_fields

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(Trade)
class TradeAdmin(admin.ModelAdmin):
    list_display = ["id", "dataset", "buyer", "destination", "status", "price", "currency", "created_at"]
    list_filter = ["status"]
    list_select_related = ["dataset", "buyer"]
    inlines = [TradeEventInline]

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        return [f.name for f in Trade._meta.fields]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(Settlement)
class SettlementAdmin(admin.ModelAdmin):
    list_display = ["trade", "amount", "currency", "platform_fee", "created_at"]

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(TradeDocument)
class TradeDocumentAdmin(admin.ModelAdmin):
    list_display = ["trade", "code", "reference", "approved_on", "valid_until", "organisation", "created_at"]
    list_select_related = ["trade", "organisation"]

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(OrganisationMechanism)
class OrganisationMechanismAdmin(admin.ModelAdmin):
    list_display = ["organisation", "code", "reference", "approved_on", "valid_until"]
    list_select_related = ["organisation"]


class _AccessRecordAdmin(admin.ModelAdmin):
    """Access records change only through marketplace.services.grants and dataset_files."""

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(DatasetFile)
class DatasetFileAdmin(_AccessRecordAdmin):
    list_display = ["dataset", "version", "original_name", "content_type", "size", "sha256", "uploaded_by_label", "created_at"]
    list_select_related = ["dataset"]
    search_fields = ["sha256", "original_name"]


@admin.register(AccessGrant)
class AccessGrantAdmin(_AccessRecordAdmin):
    list_display = ["id", "dataset", "buyer", "destination", "max_version", "valid_from", "valid_until", "revoked_at", "created_at"]
    list_select_related = ["dataset", "buyer"]
    list_filter = ["destination"]


@admin.register(GrantDownload)
class GrantDownloadAdmin(_AccessRecordAdmin):
    list_display = ["grant", "version", "username", "range_header", "length", "bytes_sent", "at", "completed_at"]
    list_select_related = ["grant"]


# --- webhooks: read-only; endpoints change through marketplace.services.webhooks (the API) ----
from marketplace.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint  # noqa: E402


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = readonly_fields = ["number", "at", "url", "status_code", "error", "duration_ms", "response_body"]

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


class _WebhookRecordAdmin(admin.ModelAdmin):
    """Viewed here, changed only through marketplace.services.webhooks."""

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(_WebhookRecordAdmin):
    list_display = ["url", "organisation", "active", "created_at"]
    list_filter = ["active"]
    list_select_related = ["organisation"]
    search_fields = ["url", "organisation__name"]
    # Never the secret: it is shown to the organisation once, on creation or rotation.
    fields = ["id", "organisation", "url", "events", "description", "active", "created_by", "created_at", "updated_at"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(_WebhookRecordAdmin):
    list_display = ["id", "kind", "event_id", "endpoint", "status", "attempts", "next_attempt_at", "delivered_at", "created_at"]
    list_filter = ["status", "kind"]
    list_select_related = ["endpoint"]
    search_fields = ["event_id"]
    inlines = [WebhookAttemptInline]
