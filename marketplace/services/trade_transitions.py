"""The single door for Trade.status: lock, check the table, write the event, defer side effects."""

import logging
from functools import partial

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from compliance.services.exports import export_commit, export_release
from config.enqueue import enqueue
from config.errors import NotFoundError
from marketplace.models import Trade, TradeEvent
from marketplace.services.events import trade_event_emit
from marketplace.services.grants import grant_issue
from marketplace.services.ledger import ledger_release
from marketplace.trade_lifecycle import ensure_transition_allowed

logger = logging.getLogger(__name__)


TRADE_TASKS = {"check": "marketplace.trade_check_compliance", "settle": "marketplace.trade_settle"}


def trade_enqueue(task_name: str, trade_id: str) -> None:
    """Publish a trade's next step. If the broker is down the trade stays in its status and the
    sweeper re-drives it (on_commit alone loses a task when publishing fails)."""
    enqueue(TRADE_TASKS[task_name], str(trade_id))


def trade_on_commit_side_effects(trade: Trade) -> None:
    """Queue the work a status implies, to run only once the transaction commits."""
    if trade.status == Trade.Status.CHECKING:
        transaction.on_commit(partial(trade_enqueue, "check", str(trade.id)))
    elif trade.status == Trade.Status.APPROVED:
        transaction.on_commit(partial(trade_enqueue, "settle", str(trade.id)))


def trade_lock(*, trade_id: object, related: bool = False) -> Trade | None:
    """Lock one trade row for the rest of the transaction, or None if it is gone. With `related`,
    the dataset, provider and buyer come in the same query (only the trade row is locked).
    On SQLite select_for_update is a no-op: IMMEDIATE transactions lock the whole file instead."""
    qs = Trade.objects.select_for_update(of=("self",)) if related else Trade.objects.select_for_update()
    if related:
        qs = qs.select_related("dataset", "provider", "buyer")
    return qs.filter(pk=trade_id).first()


def trade_apply_transition(
    *, trade: Trade, to: str, actor: AbstractBaseUser | None = None, actor_label: str = "", reason: str = "",
    also_save: tuple[str, ...] = (),
) -> Trade:
    """The transition itself, for a caller that already holds the row lock (trade_lock) inside
    its transaction. Raises TradeTransitionNotAllowedError (409)."""
    ensure_transition_allowed(current=trade.status, target=to)
    previous = trade.status
    trade.status = to
    trade.status_changed_at = timezone.now()
    trade.redrives = 0
    # waiting_since: set on entering a waiting status, kept while moving among them (a re-check, a
    # document), cleared on leaving them, so the review queue orders by how long a trade has waited
    if to not in Trade.WAITING:
        trade.waiting_since = None
    elif previous not in Trade.WAITING or trade.waiting_since is None:
        trade.waiting_since = trade.status_changed_at
    update_fields = ["status", "status_changed_at", "redrives", "waiting_since", *also_save]
    if to == Trade.Status.SETTLED:
        trade.settled_at = trade.status_changed_at
        update_fields.append("settled_at")
    trade.save(update_fields=update_fields)
    if to == Trade.Status.SETTLED:
        export_commit(subject_type="trade", subject_id=trade.id, day=trade.settled_at.date())
        grant_issue(trade=trade)
    elif to in (Trade.Status.REJECTED, Trade.Status.CANCELLED):
        export_release(subject_type="trade", subject_id=trade.id)
        ledger_release(trade=trade)
    label = actor_label or (actor.get_username() if actor else "system")
    TradeEvent.objects.create(trade=trade, from_status=previous, to_status=to, actor=actor, actor_label=label, reason=reason)
    trade_event_emit(kind="trade.status_changed", trade=trade, actor=actor, actor_label=label,
                     data={"from": previous, "to": to, "reason": reason})
    trade_on_commit_side_effects(trade)
    return trade


@transaction.atomic
def trade_transition(
    *, trade_id: object, to: str, actor: AbstractBaseUser | None = None, actor_label: str = "", reason: str = ""
) -> Trade:
    """Lock the trade and move it to `to`, or raise TradeTransitionNotAllowedError (409) / NotFoundError (404)."""
    trade = trade_lock(trade_id=trade_id)
    if trade is None:
        raise NotFoundError("No such trade.")
    return trade_apply_transition(trade=trade, to=to, actor=actor, actor_label=actor_label, reason=reason)
