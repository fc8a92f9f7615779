"""The bridge from a trade to the compliance engine: check it, record the decision, move it on.

Lock order, the same on every path that takes more than one of these (so two never deadlock):
the trade row (trade_lock), then the exporter's tally row (export_lock), then wallet rows in
wallet-id order (ledger_post). Each is taken as late as its reader needs it: the exporter's lock
only once the trade's other facts are built, right before its earlier exports are read."""

import logging
from functools import partial
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from compliance.selectors.references import references_current
from compliance.services.checks import compliance_check_perform
from compliance.services.exports import export_lock, export_prior, export_release, export_reserve
from marketplace.models import Trade
from marketplace.services.compute import compute_alternatives
from marketplace.services.events import trade_event_emit, trade_events_batched
from marketplace.services.trade_facts import trade_transfer_facts
from marketplace.services.trade_transitions import (
    Step,
    commit_export_volume,
    trade_apply_transitions,
    trade_lock,
    trade_lock_next_checking,
)
from marketplace.trade_lifecycle import STATUS_FOR_OUTCOME

logger = logging.getLogger(__name__)


@transaction.atomic
def trade_check_compliance(*, trade_id: UUID | str, settle: bool = False) -> Trade | None:
    """Decide a trade in `checking`. Idempotent: a duplicate delivery finds it no longer in
    `checking` (the row lock serialises two workers) and does nothing. Returns None if gone.

    With `settle` (the worker's task), a decision that approves the trade settles it in the same
    transaction: one task and one commit per trade instead of a check, a commit, a published
    settle task and a second transaction. The trade still passes through `approved` (its events
    and webhooks say so); a crash before the commit leaves it in `checking`, for a redelivery or
    the sweeper to decide again; after it, a duplicate finds it settled and does nothing. Trades
    approved later (by officers, or re-checks) settle through trade_settle's own task."""
    trade = trade_lock(trade_id=trade_id, related=True, for_settlement=settle)
    if trade is None:
        return None
    if trade.status != Trade.Status.CHECKING:
        logger.info("trade %s is %s, not checking: duplicate delivery ignored", trade.id, trade.status)
        return trade
    return _decide(trade, settle=settle)


@transaction.atomic
def trade_check_next(*, settle: bool = True, taken: list[UUID] | None = None, wait: bool = False) -> Trade | None:
    """Decide (and with `settle`, settle) the trade that has waited longest in `checking`, among
    those no other transaction holds (with `wait`, waiting for a held one) and no re-drive has
    taken over (the check drain, services/check_drain.py): None when there is none. The trade's id
    is appended to `taken` before it is decided, so a caller knows which trade an exception
    belongs to."""
    trade = trade_lock_next_checking(for_settlement=settle, wait=wait)
    if trade is None:
        return None
    if taken is not None:
        taken.append(trade.id)
    return _decide(trade, settle=settle)


def _decide(trade: Trade, *, settle: bool) -> Trade:
    """The check of a trade locked in `checking`, its decision recorded and its status moved on."""
    # Hold the exporter's lock from reading its tallies to reserving this trade's volume: a
    # concurrent check of another trade by the same exporter waits here and then sees it.
    today = timezone.localdate()
    references = references_current()  # rule packs in force and sanctions snapshots: one read
    facts = trade_transfer_facts(trade=trade, trade_date=today, with_prior=False, snapshots=references.sanctions)
    export_lock(exporter_id=trade.provider_id)
    facts["prior_exports"] = export_prior(
        exporter_id=trade.provider_id, buyer_id=trade.buyer_id, trade_date=today, exclude_subject_id=trade.id
    )
    check = compliance_check_perform(
        subject_type="trade",
        subject_id=trade.id,
        raw_facts=facts,
        alternatives=partial(compute_alternatives, dataset=trade.dataset, facts=facts)
        if trade.delivery == "download"
        else None,
        packs=references.rulepacks,
    )
    to = STATUS_FOR_OUTCOME[check.outcome]
    settle_now = settle and to == Trade.Status.APPROVED
    if check.outcome == "deny" or trade.delivery == "compute":
        # a compute trade exports no personal information (only released aggregates): it never
        # counts toward the exporter's cross-border tallies
        export_release(subject_type="trade", subject_id=trade.id)
    else:  # it may still settle (now, after documents, or after review): count it until it cannot
        dataset = trade.dataset
        export_reserve(
            subject_type="trade",
            subject_id=trade.id,
            exporter_id=trade.provider_id,
            buyer_id=trade.buyer_id,
            day=today,
            classification=dataset.classification,
            categories=list(dataset.categories),
            subjects=dataset.subjects,
            committed=settle_now,
        )
    trade.decision = check
    findings = ", ".join(f"{f['rule']}={f['outcome']}" for f in check.decision["findings"])
    steps = [Step(to, "system:compliance", f"engine decided {check.outcome} ({findings})")]
    if settle_now:  # what trade_settle does, without its task: same effects, same events
        steps.append(Step(Trade.Status.SETTLED, "system:settlement", "settled"))
    with trade_events_batched(trade):  # the decision, each status and the grant: one audit INSERT
        trade_event_emit(kind="trade.decided", trade=trade, actor_label="system:compliance", data={
            "check": str(check.id), "outcome": check.outcome, "requirements": check.decision["requirements"],
            "rulepacks": check.rulepacks, "rules": [f["rule"] for f in check.decision["findings"]]})
        return trade_apply_transitions(
            trade=trade, steps=steps, also_save=("decision",), enqueue_next=not settle_now,
            done=frozenset({commit_export_volume}) if settle_now else frozenset(),
        )
