"""The backstop for lost messages: re-enqueue trades whose check or settlement is overdue."""

import logging
from datetime import datetime
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from marketplace.models import Trade
from marketplace.services.events import trade_event_emit
from marketplace.services.trade_transitions import trade_apply_transition, trade_enqueue, trade_lock

logger = logging.getLogger(__name__)


def trades_sweep_stuck(*, now: datetime | None = None) -> dict[str, int]:
    """Re-drive every trade sitting in `checking` or `approved` past ELEMENTA_STUCK_AFTER.
    Safe to run any time: both tasks are idempotent.

    A trade re-driven ELEMENTA_MAX_REDRIVES times without moving is a poison message (its task
    fails every time): a check goes to an officer's queue with the reason instead of looping
    forever; a settlement that keeps failing is recorded once for attention (money must not be
    moved by hand here) and no longer re-driven.

    Re-drives back off: the n-th waits until the trade has sat ELEMENTA_STUCK_AFTER × 2^n since its
    last status change, so a frequent sweep recovers a killed worker's trade quickly while a worker
    or broker outage of several minutes does not exhaust the re-drives."""
    now = now or timezone.now()
    cutoff = now - settings.ELEMENTA_STUCK_AFTER
    counts = {"check": 0, "settle": 0, "to_review": 0, "settlement_stuck": 0}
    for status, task in ((Trade.Status.CHECKING, "check"), (Trade.Status.APPROVED, "settle")):
        stuck = (Trade.objects.filter(status=status, status_changed_at__lt=cutoff).order_by("status_changed_at")
                 .values_list("id", "redrives", "status_changed_at")[:1000])
        for trade_id, redrives, changed_at in stuck:
            if changed_at >= now - settings.ELEMENTA_STUCK_AFTER * (2 ** min(redrives, settings.ELEMENTA_MAX_REDRIVES)):
                continue  # re-driven recently: give the last re-drive its time
            if redrives >= settings.ELEMENTA_MAX_REDRIVES:
                counts["to_review" if task == "check" else "settlement_stuck"] += _give_up(
                    trade_id=trade_id, task=task, redrives=redrives
                )
                continue
            Trade.objects.filter(pk=trade_id, status=status).update(redrives=F("redrives") + 1)
            trade_enqueue(task, str(trade_id))
            counts[task] += 1
    if any(counts.values()):
        logger.warning("sweeper re-enqueued stuck trades: %s", counts)
    return counts


@transaction.atomic
def _give_up(*, trade_id: UUID, task: str, redrives: int) -> int:
    trade = trade_lock(trade_id=trade_id)
    if trade is None or trade.redrives < settings.ELEMENTA_MAX_REDRIVES:
        return 0
    reason = (f"automatic {'check' if task == 'check' else 'settlement'} failed after {redrives} re-drives; a person "
              "must look")
    if task == "check":
        logger.error("trade %s: %s", trade.id, reason)
        trade_apply_transition(trade=trade, to=Trade.Status.IN_REVIEW, actor_label="system:sweeper", reason=reason)
        return 1
    if trade.redrives == settings.ELEMENTA_MAX_REDRIVES:  # record once, then stop re-driving
        logger.error("trade %s: %s", trade.id, reason)
        trade_event_emit(
            kind="trade.settlement_stuck", trade=trade, actor_label="system:sweeper", data={"redrives": redrives}
        )
        Trade.objects.filter(pk=trade.pk).update(redrives=F("redrives") + 1)
        return 1
    return 0
