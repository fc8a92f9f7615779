"""The backstop for lost messages: re-enqueue trades whose check or settlement is overdue."""

import logging
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from marketplace.models import Trade
from marketplace.services.trade_transitions import trade_enqueue

logger = logging.getLogger(__name__)


def trades_sweep_stuck(*, now: datetime | None = None) -> dict[str, int]:
    """Re-drive every trade sitting in `checking` or `approved` past ELEMENTA_STUCK_AFTER.
    Safe to run any time: both tasks are idempotent."""
    cutoff = (now or timezone.now()) - settings.ELEMENTA_STUCK_AFTER
    counts = {"check": 0, "settle": 0}
    for status, task in ((Trade.Status.CHECKING, "check"), (Trade.Status.APPROVED, "settle")):
        ids = Trade.objects.filter(status=status, status_changed_at__lt=cutoff).values_list("id", flat=True)[:1000]
        for trade_id in ids:
            trade_enqueue(task, str(trade_id))
            counts[task] += 1
    if any(counts.values()):
        logger.warning("sweeper re-enqueued stuck trades: %s", counts)
    return counts
