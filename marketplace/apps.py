"""Marketplace app: organisations, datasets, trades, settlement and the public API."""

from django.apps import AppConfig


class MarketplaceConfig(AppConfig):
    name = "marketplace"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from compliance.signals import rulepack_activated
        from marketplace.receivers import on_rulepack_activated

        rulepack_activated.connect(on_rulepack_activated, dispatch_uid="marketplace.rescreen_after_activation")
