"""Four eyes under concurrency (PostgreSQL, real threads): the same officer hammering a refund
never carries it out alone, and however many officers confirm at once, money moves once."""

from decimal import Decimal

import pytest

from config.errors import ConflictError
from marketplace.models import Deposit, LedgerTransaction, Membership, RefundRequest, Trade
from marketplace.services.deposits import deposit_approve, deposit_credit_request
from marketplace.services.refunds import trade_refund_request
from marketplace.services.settlement import trade_settle
from marketplace.services.trade_transitions import trade_transition
from marketplace.services.trades import trade_create
from tests.factories import DatasetFactory, MembershipFactory
from tests.integration.test_concurrency import race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _no_enqueue(no_trade_work):
    """The test drives the services itself; the session's worker must not act meanwhile."""


def officers(operator, n: int) -> list[Membership]:
    return [MembershipFactory.create(organisation=operator, role=Membership.Role.OFFICER) for _ in range(n)]


def settled_over_threshold(settings, buyer, provider) -> Trade:
    settings.ELEMENTA_REFUND_FOUR_EYES_OVER = Decimal("1000")
    dataset = DatasetFactory.create(provider=provider.organisation, price=Decimal("5000.00"))
    trade = trade_create(membership=buyer, dataset_id=dataset.id)  # the price held in escrow, as a real purchase
    trade_transition(trade_id=trade.id, to=Trade.Status.APPROVED, actor_label="system:test")
    trade_settle(trade_id=trade.id)
    return trade


def test_one_officer_racing_a_large_refund_only_ever_requests_it(settings, operator, officer, buyer_eu, provider_eu):
    trade = settled_over_threshold(settings, buyer_eu, provider_eu)

    errors = race([lambda: trade_refund_request(trade_id=trade.id, officer=officer.user, reason="race")] * 10)

    assert len(errors) == 9 and all(getattr(e, "code", "") == "second_officer_required" for e in errors), errors
    assert RefundRequest.objects.filter(trade=trade, status="pending").count() == 1
    assert Trade.objects.get(pk=trade.id).status == Trade.Status.SETTLED
    assert not LedgerTransaction.objects.filter(trade=trade, kind="refund").exists()


def test_many_second_officers_confirming_at_once_refund_once(settings, operator, officer, buyer_eu, provider_eu):
    trade = settled_over_threshold(settings, buyer_eu, provider_eu)
    trade_refund_request(trade_id=trade.id, officer=officer.user, reason="duplicate purchase")

    others = officers(operator, 8)
    errors = race(
        [lambda m=m: trade_refund_request(trade_id=trade.id, officer=m.user, reason="confirmed") for m in others]
    )

    assert len(errors) == 7 and all(isinstance(e, ConflictError) for e in errors), errors
    assert Trade.objects.get(pk=trade.id).status == Trade.Status.REFUNDED
    assert LedgerTransaction.objects.filter(trade=trade, kind="refund").count() == 1
    assert RefundRequest.objects.get(trade=trade).status == "executed"


def test_many_officers_approving_one_direct_credit_credit_it_once(operator, officer, buyer_us):
    deposit = deposit_credit_request(
        organisation=buyer_us.organisation, amount=Decimal("1000.00"), currency="EUR", operator=officer.user
    )
    others = officers(operator, 8)

    errors = race([lambda: deposit_approve(deposit_id=deposit.id, operator=officer.user)]
                  + [lambda m=m: deposit_approve(deposit_id=deposit.id, operator=m.user) for m in others])

    assert len(errors) == 8 and {e.code for e in errors} <= {"deposit_not_pending", "same_person_not_allowed"}, errors
    assert Deposit.objects.get(pk=deposit.id).status == "credited"
    assert LedgerTransaction.objects.filter(deposit=deposit).count() == 1
