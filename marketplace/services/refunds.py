"""Four eyes on refunds: a refund of a trade priced over ELEMENTA_REFUND_FOUR_EYES_OVER (in the
trade's currency) needs two different officers. The first officer's refund is recorded as a
pending RefundRequest and nothing moves; a different officer's refund of the same trade carries
it out (trade_refund). At or under the threshold one officer suffices."""

from dataclasses import dataclass
from uuid import UUID

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from compliance.errors import SecondOfficerRequiredError
from config.errors import NotFoundError
from marketplace.models import RefundRequest, Trade
from marketplace.services.events import trade_event_emit
from marketplace.services.trade_transitions import trade_lock
from marketplace.services.trades import trade_refund
from marketplace.trade_lifecycle import ensure_transition_allowed


@dataclass(frozen=True)
class RefundOutcome:
    trade: Trade
    executed: bool  # False: recorded, waiting for a second officer
    request: RefundRequest | None = None


def refund_needs_two(trade: Trade) -> bool:
    return trade.price > settings.ELEMENTA_REFUND_FOUR_EYES_OVER


def _label(user: User) -> str:
    return user.get_username()[:150]


@transaction.atomic
def trade_refund_request(*, trade_id: UUID, officer: User, reason: str) -> RefundOutcome:
    """An officer's refund: carried out at once at or under the threshold; over it, the first call
    records a request (the trade stays settled) and a different officer's call carries it out with
    the first officer's reason. The same officer calling again is 409 second_officer_required."""
    trade = trade_lock(trade_id=trade_id)
    if trade is None:
        raise NotFoundError("No such trade.")
    ensure_transition_allowed(current=trade.status, target=Trade.Status.REFUNDED)
    if not refund_needs_two(trade):
        return RefundOutcome(trade=trade_refund(trade_id=trade.id, officer=officer, reason=reason), executed=True)
    pending = RefundRequest.objects.select_for_update().filter(trade=trade, status=RefundRequest.Status.PENDING).first()
    if pending is None:
        request = RefundRequest.objects.create(trade=trade, amount=trade.price, currency=trade.currency, reason=reason,
                                               requested_by=officer, requested_by_label=_label(officer))
        trade_event_emit(kind="trade.refund_requested", trade=trade, actor=officer, data={
            "refund_request": str(request.id), "amount": trade.price, "currency": trade.currency, "reason": reason,
            "four_eyes_over": settings.ELEMENTA_REFUND_FOUR_EYES_OVER})
        return RefundOutcome(trade=trade, executed=False, request=request)
    if pending.requested_by_id is not None and pending.requested_by_id == officer.pk:
        raise SecondOfficerRequiredError("You asked for this refund; a different officer must carry it out.")
    refunded = trade_refund(trade_id=trade.id, officer=officer, reason=pending.reason)
    pending.status, pending.confirmed_by, pending.confirmed_by_label, pending.confirmed_at = (
        RefundRequest.Status.EXECUTED, officer, _label(officer), timezone.now())
    pending.save(update_fields=["status", "confirmed_by", "confirmed_by_label", "confirmed_at"])
    trade_event_emit(
        kind="trade.refund_confirmed",
        trade=refunded,
        actor=officer,
        data={
            "refund_request": str(pending.id),
            "amount": pending.amount,
            "currency": pending.currency,
            "reason": pending.reason,
            "requested_by": pending.requested_by_label,
            "confirmation_note": reason,
        },
    )
    return RefundOutcome(trade=refunded, executed=True, request=pending)
