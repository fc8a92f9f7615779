"""Marketplace's reactions to other apps' signals (connected in MarketplaceConfig.ready)."""

from typing import Any

from marketplace.services.rescreening import rescreen_enqueue


def on_rulepack_activated(sender: Any, *, pack_id: str, **kwargs: Any) -> None:
    """A rule-pack version was activated (sent after commit): re-screen in the worker, not here,
    so the officer's request returns at once."""
    rescreen_enqueue(pack_id)


def on_sanctions_list_imported(sender: Any, *, list_id: str, **kwargs: Any) -> None:
    """A new sanctions-list snapshot was imported (sent after commit): screen everyone again in the worker."""
    from marketplace import tasks

    try:
        tasks.rescreen_after_list_import_task.delay(list_id)
    except Exception:  # the broker is down: the hourly due-sweep picks the snapshot up
        import logging

        logging.getLogger(__name__).warning("could not enqueue re-screening for sanctions list %s", list_id, exc_info=True)


# Audited events that someone must hear about (marketplace/services/notifications.py).
NOTIFYING = frozenset({
    "trade.status_changed", "grant.flagged", "evidence.added", "mechanism.added", "evidence.accepted", "evidence.rejected",
    "grant.suspended", "grant.revoked", "evidence.first_acceptance", "review.first_approval", "organisation.first_acceptance",
    "trade.refund_requested", "deposit.credit_requested",
})


def on_audit_recorded(sender: Any, *, kind: str, subject_type: str, subject_id: str, data: dict[str, Any], **kwargs: Any) -> None:
    """Sent inside the action's transaction: the notifications go to the outbox in it."""
    if kind in NOTIFYING:
        from marketplace.services.notifications import notify_for_event

        notify_for_event(kind=kind, subject_type=subject_type, subject_id=subject_id, data=data)
