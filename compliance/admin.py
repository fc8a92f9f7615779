"""Admin: rule packs, checks and reviews are records; none is editable here."""

from django.contrib import admin

from compliance.models import ComplianceCheck, ExportRecord, Review, RulePack


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(RulePack)
class RulePackAdmin(ReadOnlyAdmin):
    list_display = ["regime", "version", "kind", "effective_from", "loaded_at"]


@admin.register(ComplianceCheck)
class ComplianceCheckAdmin(ReadOnlyAdmin):
    list_display = ["subject_type", "subject_id", "outcome", "created_at"]
    list_filter = ["outcome"]


@admin.register(Review)
class ReviewAdmin(ReadOnlyAdmin):
    list_display = ["subject_id", "verdict", "officer_username", "created_at"]


@admin.register(ExportRecord)
class ExportRecordAdmin(ReadOnlyAdmin):
    list_display = ["exporter_id", "subject_id", "state", "date", "classification", "subjects"]
    list_filter = ["state", "classification"]
