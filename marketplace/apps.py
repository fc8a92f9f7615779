"""Marketplace app: organisations, datasets, trades, settlement and the public API."""

from django.apps import AppConfig


class MarketplaceConfig(AppConfig):
    name = "marketplace"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings
        from django.db.models.signals import post_delete, post_save
        from knox.models import AuthToken

        from compliance.signals import audit_recorded, rulepack_activated, sanctions_list_imported
        from marketplace.models import Membership, Organisation
        from marketplace.receivers import (
            on_audit_recorded,
            on_identity_changed,
            on_rulepack_activated,
            on_sanctions_list_imported,
            on_session_deleted,
            on_user_saved,
        )

        rulepack_activated.connect(on_rulepack_activated, dispatch_uid="marketplace.rescreen_after_activation")
        post_save.connect(
            on_user_saved, sender=settings.AUTH_USER_MODEL, dispatch_uid="marketplace.sessions_end_on_password_change"
        )
        # Cached session verifications (config/auth_cache.py) are dropped when what they copy changes.
        post_delete.connect(on_session_deleted, sender=AuthToken, dispatch_uid="marketplace.auth_cache_session")
        for model in (settings.AUTH_USER_MODEL, Membership, Organisation):
            for signal in (post_save, post_delete):
                signal.connect(on_identity_changed, sender=model, dispatch_uid=f"marketplace.auth_cache_{model}")
        audit_recorded.connect(on_audit_recorded, dispatch_uid="marketplace.notifications")
        sanctions_list_imported.connect(
            on_sanctions_list_imported, dispatch_uid="marketplace.rescreen_after_list_import"
        )
        from marketplace.models import WebhookEndpoint
        from marketplace.services.webhooks.subscriptions import on_endpoint_changed

        # the fan-out's per-process cache of who has endpoints (services/webhooks/subscriptions.py)
        for signal in (post_save, post_delete):
            signal.connect(
                on_endpoint_changed, sender=WebhookEndpoint, dispatch_uid="marketplace.webhook_subscriptions"
            )
