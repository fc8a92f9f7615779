"""The single door for Trade.status: lock, check the table, write the event, defer side effects."""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from compliance.services.exports import export_commit, export_release
from config.compiled import CompiledFirst, CompiledLookup
from config.enqueue import enqueue
from config.errors import NotFoundError
from marketplace.models import Trade, TradeEvent
from marketplace.services.events import trade_event_emit, trade_events_emit
from marketplace.services.grants import grant_context_annotations, grant_issue
from marketplace.services.ledger import ledger_hold, ledger_pay_provider, ledger_release
from marketplace.trade_lifecycle import ensure_transition_allowed

logger = logging.getLogger(__name__)


TRADE_TASKS = {"check": "marketplace.trade_check_compliance", "settle": "marketplace.trade_settle"}


def trade_enqueue(task_name: str, trade_id: str) -> None:
    """Publish a trade's next step. If the broker is down the trade stays in its status and the
    sweeper re-drives it (on_commit alone loses a task when publishing fails)."""
    enqueue(TRADE_TASKS[task_name], str(trade_id))


CHECK_DRAIN_KEY = "elementa:trades:check-drain"


def trade_check_request(trade_id: str) -> None:
    """After a commit that left a trade in `checking`: have it checked.

    With ELEMENTA_CHECK_DRAIN_SECONDS > 0 (the default), one drain task (services/check_drain.py)
    stands for every trade that enters `checking` until it starts: the first trade claims the drain
    in the shared cache (an atomic add) and publishes it; the trades after it publish nothing,
    because the drain releases the claim before it looks for waiting trades, so every trade
    committed before the release is taken by it and every trade after publishes a drain of its own.
    Under load a few tasks check hundreds of trades; one trade at a time it is one task per trade,
    as before. The claim expires after ELEMENTA_CHECK_DRAIN_SECONDS, so a drain message lost with a
    broker (or a claim whose drain was never published) holds back the next publish no longer than
    that, and the sweeper re-drives any trade left in `checking`. With the shared cache not
    answering, a drain is published without a claim (the add may have happened; a claim only this
    process saw would hold back no one else). 0: one task per trade, with its id."""
    from config.outage import guarded_cache

    interval = settings.ELEMENTA_CHECK_DRAIN_SECONDS
    if interval <= 0:
        trade_enqueue("check", trade_id)
        return
    claimed = guarded_cache.add_shared(CHECK_DRAIN_KEY, "1", timeout=interval)
    if claimed is None:
        enqueue("marketplace.trades_check_drain")
    elif claimed and not enqueue("marketplace.trades_check_drain"):
        guarded_cache.delete(CHECK_DRAIN_KEY)  # the next trade may try to publish at once


def _pay_provider(trade: Trade) -> None:
    ledger_pay_provider(trade=trade)  # escrow → provider, fee → platform revenue, the Settlement row


def commit_export_volume(trade: Trade) -> None:
    assert trade.settled_at is not None
    export_commit(subject_type="trade", subject_id=trade.id, day=trade.settled_at.date())


def _issue_grant(trade: Trade) -> None:
    grant_issue(trade=trade)


def _release_export_volume(trade: Trade) -> None:
    export_release(subject_type="trade", subject_id=trade.id)


def _release_escrow(trade: Trade) -> None:
    ledger_release(trade=trade)


def _hold_escrow(trade: Trade) -> None:
    ledger_hold(trade=trade)  # not enough funds → 409, and the whole purchase rolls back


# What entering a status does, in the transition's own transaction (all or nothing with it), in
# order. A trade's money and access move here and nowhere else but refunds (services/refunds.py).
ON_OPEN: tuple[Callable[[Trade], None], ...] = (_hold_escrow,)
ON_ENTER: dict[str, tuple[Callable[[Trade], None], ...]] = {
    Trade.Status.SETTLED: (_pay_provider, commit_export_volume, _issue_grant),
    Trade.Status.REJECTED: (_release_export_volume, _release_escrow),
    Trade.Status.CANCELLED: (_release_export_volume, _release_escrow),
}
# The work a status asks of a worker, published only once the transaction commits.
AFTER_COMMIT: dict[str, str] = {Trade.Status.CHECKING: "check", Trade.Status.APPROVED: "settle"}


def trade_on_commit_side_effects(trade: Trade) -> None:
    """Queue the work a status implies, to run only once the transaction commits."""
    task = AFTER_COMMIT.get(trade.status)
    if task == "check":
        transaction.on_commit(partial(trade_check_request, str(trade.id)))
    elif task is not None:
        transaction.on_commit(partial(trade_enqueue, task, str(trade.id)))


def trade_open(
    *, trade: Trade, actor: User, reason: str, data: dict[str, Any],
    also: tuple[tuple[str, dict[str, Any]], ...] = (),
) -> Trade:
    """The door's entrance: a trade just created in `checking` gets its first event, its escrow
    hold and its compliance check (after commit). Call inside the transaction that created it.
    `also`: further (kind, data) events of the purchase, recorded with the first in one insert."""
    label = actor.get_username()
    TradeEvent.objects.create(
        trade=trade, from_status="", to_status=trade.status, actor=actor, actor_label=label, reason=reason
    )
    trade_events_emit(
        trade=trade,
        actor=actor,
        events=[("trade.status_changed", {"from": "", "to": trade.status, "reason": reason, **data}), *also],
    )
    for effect in ON_OPEN:
        effect(trade)
    trade_on_commit_side_effects(trade)
    return trade


def _trade_lock_query(*, related: bool, for_settlement: bool) -> Callable[[UUID], QuerySet[Trade]]:
    def build(trade_id: UUID) -> QuerySet[Trade]:
        qs = Trade.objects.select_for_update(of=("self",)) if related else Trade.objects.select_for_update()
        if related:
            qs = qs.select_related("dataset", "dataset__provider", "provider", "buyer")  # the facts read all four
        if for_settlement:
            qs = qs.annotate(**grant_context_annotations())
        return qs.filter(pk=trade_id)

    return build


def _next_checking_query(*, for_settlement: bool, wait: bool) -> Callable[[], QuerySet[Trade]]:
    def build() -> QuerySet[Trade]:
        qs = (Trade.objects.select_for_update(of=("self",), skip_locked=not wait)
              .select_related("dataset", "dataset__provider", "provider", "buyer")
              .filter(status=Trade.Status.CHECKING, redrives=0).order_by("status_changed_at", "id"))
        if for_settlement:
            qs = qs.annotate(**grant_context_annotations())
        return qs[:1]

    return build


# Each shape of the lock compiled once per process (config/compiled.py): the ORM would compile the
# worker's (four joins, three subqueries) on every trade: about 1.5 ms of CPU a trade (bench/history.py).
_TRADE_LOCKS = {
    (related, for_settlement): CompiledLookup(_trade_lock_query(related=related, for_settlement=for_settlement))
    for related in (False, True) for for_settlement in (False, True)
}
_NEXT_CHECKING_LOCKS = {
    (for_settlement, wait): CompiledFirst(_next_checking_query(for_settlement=for_settlement, wait=wait))
    for for_settlement in (False, True) for wait in (False, True)
}


def trade_lock(*, trade_id: UUID | str, related: bool = False, for_settlement: bool = False) -> Trade | None:
    """Lock one trade row for the rest of the transaction, or None if it is gone. With `related`,
    the dataset, provider and buyer come in the same query (only the trade row is locked). With
    `for_settlement`, what issuing its grant reads comes with it too (grant_context_annotations).
    On SQLite select_for_update is a no-op: IMMEDIATE transactions lock the whole file instead."""
    return _TRADE_LOCKS[(related, for_settlement)].get(trade_id)


def trade_lock_next_checking(*, for_settlement: bool = False, wait: bool = False) -> Trade | None:
    """Find and lock, in one statement, the trade that has waited longest in `checking` among those
    no other transaction holds (PostgreSQL's SKIP LOCKED: concurrent check drains each take a
    different trade and never wait for one another) and no sweeper re-drive has taken over
    (redrives = 0; a re-driven trade has a task of its own). As trade_lock(related=True) otherwise.
    With `wait`, a held row is waited for instead (PostgreSQL then checks it again: one another
    drain decided meanwhile is passed over). SQLite has one writer at a time, so there no row is
    ever held by another transaction."""
    return _NEXT_CHECKING_LOCKS[(for_settlement, wait)].first()


def trade_apply_transition(
    *, trade: Trade, to: str, actor: User | None = None, actor_label: str = "", reason: str = "",
    also_save: tuple[str, ...] = (), enqueue_next: bool = True,
) -> Trade:
    """The transition itself, for a caller that already holds the row lock (trade_lock) inside
    its transaction. Raises TradeTransitionNotAllowedError (409). `enqueue_next=False` is for a
    caller that does the status's work itself in the same transaction (the check that settles)."""
    return trade_apply_transitions(
        trade=trade, steps=[Step(to, actor_label, reason)], actor=actor, also_save=also_save, enqueue_next=enqueue_next
    )


@dataclass(frozen=True)
class Step:
    to: str
    actor_label: str = ""
    reason: str = ""


def trade_apply_transitions(
    *, trade: Trade, steps: list[Step], actor: User | None = None, also_save: tuple[str, ...] = (),
    enqueue_next: bool = True, done: frozenset[Callable[[Trade], None]] = frozenset(),
) -> Trade:
    """Several transitions in a row under one lock (checking → approved → settled when the check
    settles at once): each is checked against the table and gets its event and audit record, as
    one at a time would, but the trade row is written once and the events in one INSERT. Each
    status entered does its work (ON_ENTER) after the row is written, in order; `done` names work
    the caller already did in the same transaction (the check records its export volume committed)."""
    now = timezone.now()
    entered: list[tuple[str, str, str, str]] = []  # (from, to, actor label, reason)
    update_fields = ["status", "status_changed_at", "redrives", "waiting_since", *also_save]
    for step in steps:
        ensure_transition_allowed(current=trade.status, target=step.to)
        previous = trade.status
        trade.status = step.to
        trade.status_changed_at = now
        trade.redrives = 0
        # waiting_since: set on entering a waiting status, kept while moving among them (a re-check, a
        # document), cleared on leaving them, so the review queue orders by how long a trade has waited
        if step.to not in Trade.WAITING:
            trade.waiting_since = None
        elif previous not in Trade.WAITING or trade.waiting_since is None:
            trade.waiting_since = trade.status_changed_at
        if step.to == Trade.Status.SETTLED:
            trade.settled_at = trade.status_changed_at
            update_fields.append("settled_at")
        label = step.actor_label or (actor.get_username() if actor else "system")
        entered.append((previous, step.to, label, step.reason))
    trade.save(update_fields=update_fields)
    for previous, to, label, reason in entered:  # the audit trail reads in order: approved, grant issued, settled
        for effect in ON_ENTER.get(to, ()):
            if effect not in done:
                effect(trade)
        trade_event_emit(kind="trade.status_changed", trade=trade, actor=actor, actor_label=label,
                         data={"from": previous, "to": to, "reason": reason})
    events = [
        TradeEvent(trade=trade, from_status=previous, to_status=to, actor=actor, actor_label=label, reason=reason)
        for previous, to, label, reason in entered
    ]
    if len(events) == 1:
        events[0].save(force_insert=True)
    else:
        TradeEvent.objects.bulk_create(events)
    if enqueue_next:
        trade_on_commit_side_effects(trade)
    return trade


@transaction.atomic
def trade_transition(
    *, trade_id: UUID, to: str, actor: User | None = None, actor_label: str = "", reason: str = ""
) -> Trade:
    """Lock the trade and move it to `to`, or raise TradeTransitionNotAllowedError (409) / NotFoundError (404)."""
    trade = trade_lock(trade_id=trade_id)
    if trade is None:
        raise NotFoundError("No such trade.")
    return trade_apply_transition(trade=trade, to=to, actor=actor, actor_label=actor_label, reason=reason)
