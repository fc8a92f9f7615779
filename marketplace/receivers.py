"""Marketplace's reactions to other apps' signals (connected in MarketplaceConfig.ready)."""

from typing import Any

from config.enqueue import enqueue
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
def on_session_deleted(sender: Any, *, instance: Any, **kwargs: Any) -> None:
    """A session ended (logout, revocation, password change, purge): its cached verification goes at once."""
    from config.auth_cache import auth_cache_forget

    auth_cache_forget([instance.digest])


def on_identity_changed(sender: Any, *, instance: Any, **kwargs: Any) -> None:
    """A user, membership or organisation was saved or deleted: cached sessions carry a copy of it."""
    from config.auth_cache import auth_cache_forget_users
    from marketplace.models import Membership, Organisation

    if isinstance(instance, Organisation):
        members = Membership.objects.filter(organisation_id=instance.pk).values_list("user_id", flat=True)
        auth_cache_forget_users(members)
    elif isinstance(instance, Membership):
        auth_cache_forget_users([instance.user_id])
    else:
        auth_cache_forget_users([instance.pk])


def on_sanctions_list_imported(sender: Any, *, list_id: str, **kwargs: Any) -> None:
    """A new sanctions-list snapshot was imported (sent after commit): screen everyone again in the worker."""
    enqueue("marketplace.rescreen_after_list_import", list_id)  # broker down: the hourly due-sweep picks it up


# Audited events that someone must hear about (marketplace/services/notifications.py).
NOTIFYING = frozenset(
    {
        "trade.status_changed",
        "grant.flagged",
        "evidence.added",
        "mechanism.added",
        "evidence.accepted",
        "evidence.rejected",
        "grant.suspended",
        "grant.revoked",
        "evidence.first_acceptance",
        "review.first_approval",
        "organisation.first_acceptance",
        "trade.refund_requested",
        "deposit.credit_requested",
    }
)


def on_audit_recorded(
    sender: Any, *, kind: str, subject_type: str, subject_id: str, data: dict[str, Any], **kwargs: Any
) -> None:
    """Sent inside the action's transaction: the notifications go to the outbox in it."""
    if kind in NOTIFYING:
        from marketplace.services.notifications import notify_for_event

        notify_for_event(kind=kind, subject_type=subject_type, subject_id=subject_id, data=data)
