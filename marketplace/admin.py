"""Admin: read-mostly views of marketplace data; status never changes here except through services."""

from django.contrib import admin

from marketplace.models import (
    Dataset,
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
