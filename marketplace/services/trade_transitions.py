"""The single door for Trade.status: lock, check the table, write the event, defer side effects."""

import logging
from functools import partial

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from marketplace.models import Trade, TradeEvent
from marketplace.trade_lifecycle import ensure_transition_allowed

logger = logging.getLogger(__name__)


def trade_enqueue(task_name: str, trade_id: str) -> None:
    """Publish after commit. If the broker is down the trade stays in its status and the sweeper
    re-drives it (on_commit alone loses a task when publishing fails)."""
    from marketplace import tasks

    task = {"check": tasks.trade_check_compliance_task, "settle": tasks.trade_settle_task}[task_name]
    try:
        task.delay(str(trade_id))
    except Exception:  # the broker is unreachable: the sweeper is the backstop
        logger.warning("could not enqueue %s for trade %s; the sweeper will retry", task_name, trade_id, exc_info=True)


def trade_on_commit_side_effects(trade: Trade) -> None:
    """Queue the work a status implies, to run only once the transaction commits."""
    if trade.status == Trade.Status.CHECKING:
        transaction.on_commit(partial(trade_enqueue, "check", str(trade.id)))
    elif trade.status == Trade.Status.APPROVED:
        transaction.on_commit(partial(trade_enqueue, "settle", str(trade.id)))


def trade_lock(*, trade_id: object) -> Trade:
    """Lock one trade row for the rest of the transaction (a no-op on SQLite, which locks the file)."""
    return Trade.objects.select_for_update().get(pk=trade_id)


@transaction.atomic
def trade_transition(
    *, trade_id: object, to: str, actor: AbstractBaseUser | None = None, actor_label: str = "", reason: str = ""
) -> Trade:
    """Move a trade to `to`, or raise TradeTransitionNotAllowedError (409). Returns the locked row."""
    trade = trade_lock(trade_id=trade_id)
    ensure_transition_allowed(current=trade.status, target=to)
    previous = trade.status
    trade.status = to
    trade.status_changed_at = timezone.now()
    update_fields = ["status", "status_changed_at"]
    if to == Trade.Status.SETTLED:
        trade.settled_at = trade.status_changed_at
        update_fields.append("settled_at")
    trade.save(update_fields=update_fields)
    TradeEvent.objects.create(
        trade=trade, from_status=previous, to_status=to, actor=actor,
        actor_label=actor_label or (actor.get_username() if actor else "system"), reason=reason,
    )
    trade_on_commit_side_effects(trade)
    return trade
