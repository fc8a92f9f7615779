"""Marketplace's reactions to other apps' signals (connected in MarketplaceConfig.ready)."""

from typing import Any

from marketplace.services.rescreening import rescreen_enqueue
from marketplace.services.sessions import sessions_revoke_all


def on_rulepack_activated(sender: Any, *, pack_id: str, **kwargs: Any) -> None:
    """A rule-pack version was activated (sent after commit): re-screen in the worker, not here,
    so the officer's request returns at once."""
    rescreen_enqueue(pack_id)


def on_user_saved(sender: Any, *, instance: Any, created: bool, **kwargs: Any) -> None:
    """A password was set (set_password, then save) by any path: the API, the admin, `changepassword`,
    a password reset. Every session the user had ends, in the same transaction as the new password.
    Django keeps the raw password in `_password` from set_password until the save completes; a hash
    upgrade at login clears it before saving, so it ends nothing."""
    if created or getattr(instance, "_password", None) is None:
        return
    sessions_revoke_all(user=instance, actor=None, reason="password_changed")
