"""Settlement: escrow to the provider less the platform fee, the settlement record, then the
transition (which commits the export volume and issues the access grant)."""

import logging

from django.db import transaction

from marketplace.models import Settlement, Trade
from marketplace.services.ledger import ledger_settle
from marketplace.services.trade_transitions import trade_apply_transition, trade_lock

logger = logging.getLogger(__name__)


@transaction.atomic
def trade_settle(*, trade_id: object) -> Trade | None:
    """Settle an approved trade exactly once: the row lock serialises racing workers, the status
    check makes a duplicate delivery a no-op, and Settlement's one-per-trade constraint is the
    last guard."""
    trade = trade_lock(trade_id=trade_id)
    if trade is None:
        return None
    if trade.status != Trade.Status.APPROVED:
        logger.info("trade %s is %s, not approved: nothing to settle", trade.id, trade.status)
        return trade
    fee, share = ledger_settle(trade=trade)  # escrow → provider, fee → platform revenue
    Settlement.objects.create(trade=trade, amount=trade.price, currency=trade.currency, platform_fee=fee, provider_amount=share)
    return trade_apply_transition(trade=trade, to=Trade.Status.SETTLED, actor_label="system:settlement", reason="settled")
