"""Marketplace app: organisations, datasets, trades, settlement and the public API."""

from django.apps import AppConfig


class MarketplaceConfig(AppConfig):
    name = "marketplace"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from compliance.signals import audit_recorded, rulepack_activated, sanctions_list_imported
        from marketplace.receivers import on_audit_recorded, on_rulepack_activated, on_sanctions_list_imported

        rulepack_activated.connect(on_rulepack_activated, dispatch_uid="marketplace.rescreen_after_activation")
        audit_recorded.connect(on_audit_recorded, dispatch_uid="marketplace.notifications")
        sanctions_list_imported.connect(on_sanctions_list_imported, dispatch_uid="marketplace.rescreen_after_list_import")
