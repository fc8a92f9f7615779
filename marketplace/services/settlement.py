"""Settlement: an approved trade enters `settled` exactly once; what that moves (escrow to the
provider less the platform fee, the Settlement record, export volume, the access grant) is the
transition table's entry effect for `settled`."""

import logging
from uuid import UUID

from django.db import transaction

from marketplace.models import Trade
from marketplace.services.events import trade_events_batched
from marketplace.services.trade_transitions import trade_apply_transition, trade_lock

logger = logging.getLogger(__name__)


@transaction.atomic
def trade_settle(*, trade_id: UUID | str) -> Trade | None:
    """Settle an approved trade exactly once: the row lock serialises racing workers, the status
    check makes a duplicate delivery a no-op, and Settlement's one-per-trade constraint is the
    last guard."""
    trade = trade_lock(trade_id=trade_id, for_settlement=True)
    if trade is None:
        return None
    if trade.status != Trade.Status.APPROVED:
        logger.info("trade %s is %s, not approved: nothing to settle", trade.id, trade.status)
        return trade
    # Entering `settled` pays the provider from escrow, records the Settlement, commits the export
    # volume and issues the grant (trade_transitions.ON_ENTER), all in this transaction.
    with trade_events_batched(trade):  # the status and the grant: one audit INSERT
        return trade_apply_transition(
            trade=trade, to=Trade.Status.SETTLED, actor_label="system:settlement", reason="settled"
        )
