"""The trade lifecycle services: one door for status, idempotent check and settlement, side effects after commit."""

from decimal import Decimal

import pytest
from django.db.models import F

from compliance.models import ComplianceCheck, Review
from marketplace.errors import TradeTransitionNotAllowedError
from marketplace.models import Settlement, Trade, Wallet
from marketplace.selectors.ledger import ledger_verify
from marketplace.services.ledger import EscrowMissingError
from marketplace.services.settlement import trade_settle
from marketplace.services.trade_compliance import trade_check_compliance
from marketplace.services.trade_transitions import trade_transition
from marketplace.services.trades import trade_cancel, trade_create, trade_review
from marketplace.trade_lifecycle import STATUS_FOR_OUTCOME, TERMINAL, TRANSITIONS
from tests.factories import TradeFactory

pytestmark = pytest.mark.django_db


def test_every_engine_outcome_maps_to_a_status_checking_may_enter():
    for outcome, status in STATUS_FOR_OUTCOME.items():
        assert status in TRANSITIONS[Trade.Status.CHECKING], outcome


def test_terminal_statuses_have_no_way_out():
    assert TERMINAL == {Trade.Status.REJECTED, Trade.Status.CANCELLED, Trade.Status.REFUNDED}
    assert TRANSITIONS[Trade.Status.SETTLED] == {Trade.Status.REFUNDED}  # only an officer's refund


def test_trade_create_pins_price_and_enqueues_the_check_only_after_commit(
    buyer_eu, eu_personal, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        trade = trade_create(membership=buyer_eu, dataset_id=eu_personal.id)

    assert trade.status == Trade.Status.CHECKING
    assert (trade.price, trade.currency, trade.destination) == (eu_personal.price, "EUR", "DE")
    # only the compliance check: entering "checking" e-mails nobody (the worker moves the
    # trade on within moments, and the parties hear of where it lands)
    assert len(callbacks) == 1 and "check" in repr(callbacks[0])
    assert [(e.from_status, e.to_status, e.actor_label) for e in trade.events.all()] == [
        ("", "checking", buyer_eu.user.username)
    ]


def test_later_dataset_edits_do_not_change_an_open_trade(buyer_eu, eu_personal):
    trade = trade_create(membership=buyer_eu, dataset_id=eu_personal.id)
    eu_personal.price = Decimal("999.00")
    eu_personal.save()

    trade.refresh_from_db()
    assert trade.price == Decimal("100.00")


def test_check_is_idempotent_under_duplicate_delivery(rulepacks, buyer_eu, eu_personal):
    trade = trade_create(membership=buyer_eu, dataset_id=eu_personal.id)

    trade_check_compliance(trade_id=trade.id)
    trade_check_compliance(trade_id=trade.id)

    trade.refresh_from_db()
    assert trade.status == Trade.Status.APPROVED
    assert ComplianceCheck.objects.filter(subject_id=trade.id).count() == 1
    assert [e.to_status for e in trade.events.all()] == ["checking", "approved"]
    assert trade.decision.outcome == "allow"


def test_check_of_a_vanished_trade_is_a_quiet_no_op(rulepacks):
    assert trade_check_compliance(trade_id="00000000-0000-0000-0000-000000000000") is None


@pytest.mark.parametrize(("buyer", "dataset", "status"), [
    ("buyer_eu", "eu_personal", "approved"),
    ("buyer_us", "eu_personal", "needs_documents"),
    ("buyer_eu", "eu_health", "in_review"),
    ("buyer_us", "cn_personal", "approved"),
    ("buyer_ir", "eu_public", "rejected"),
])
def test_engine_outcome_decides_the_next_status(request, rulepacks, buyer, dataset, status):
    trade = trade_create(membership=request.getfixturevalue(buyer), dataset_id=request.getfixturevalue(dataset).id)

    trade = trade_check_compliance(trade_id=trade.id)

    assert trade.status == status


def test_settlement_happens_once_with_the_platform_fee(settings, buyer_eu, eu_personal):
    settings.ELEMENTA_PLATFORM_FEE = Decimal("0.05")
    trade = TradeFactory(dataset=eu_personal, buyer=buyer_eu.organisation, status=Trade.Status.APPROVED)

    trade_settle(trade_id=trade.id)
    trade_settle(trade_id=trade.id)

    settlement = Settlement.objects.get(trade=trade)
    assert (settlement.amount, settlement.platform_fee, settlement.provider_amount) == (
        Decimal("100.00"),
        Decimal("5.00"),
        Decimal("95.00"),
    )
    trade.refresh_from_db()
    assert trade.status == Trade.Status.SETTLED and trade.settled_at is not None
    assert [e.to_status for e in trade.events.all()] == ["settled"]
    kinds = sorted(trade.ledger_transactions.values_list("kind", flat=True))
    assert kinds == ["hold", "settle"]  # money moved, once: escrow in at purchase, out at settlement
    provider_wallet = Wallet.objects.get(organisation=eu_personal.provider, currency="EUR")
    assert provider_wallet.available == Decimal("95.00")
    assert ledger_verify() == []


def test_settlement_refuses_a_priced_trade_with_no_escrow(buyer_eu, eu_personal):
    trade = TradeFactory.build(dataset=eu_personal, buyer=buyer_eu.organisation, status=Trade.Status.APPROVED)
    trade.save()  # a row saved past the services: a state only a bug could make, approved with nothing held

    with pytest.raises(EscrowMissingError):
        trade_settle(trade_id=trade.id)

    assert not Settlement.objects.filter(trade=trade).exists()


def test_ledger_verify_names_a_wallet_that_drifted_from_its_entries(buyer_eu, eu_personal):
    TradeFactory(dataset=eu_personal, buyer=buyer_eu.organisation, status=Trade.Status.SETTLED)
    assert ledger_verify() == []

    Wallet.objects.filter(organisation=buyer_eu.organisation, currency="EUR").update(available=F("available") + 1)

    problems = ledger_verify()
    assert len(problems) == 1 and "available" in problems[0] and "entries sum to" in problems[0]


def test_settle_ignores_a_trade_that_is_not_approved(buyer_eu, eu_personal):
    trade = TradeFactory(dataset=eu_personal, buyer=buyer_eu.organisation, status=Trade.Status.IN_REVIEW)

    trade_settle(trade_id=trade.id)

    assert not Settlement.objects.exists()


def test_transition_outside_the_table_is_refused_and_changes_nothing(buyer_eu, eu_personal):
    trade = TradeFactory(dataset=eu_personal, buyer=buyer_eu.organisation, status=Trade.Status.SETTLED)
    events = trade.events.count()

    with pytest.raises(TradeTransitionNotAllowedError):
        trade_cancel(trade_id=trade.id, actor=buyer_eu.user)

    trade.refresh_from_db()
    assert trade.status == Trade.Status.SETTLED and trade.events.count() == events


def test_review_records_who_and_why_with_the_status_change(rulepacks, officer, buyer_eu, eu_health):
    trade = trade_check_compliance(trade_id=trade_create(membership=buyer_eu, dataset_id=eu_health.id).id)

    trade = trade_review(
        trade_id=trade.id, officer=officer.user, approve=True, reason="Art. 9(2)(a) explicit consent records checked"
    )

    review = Review.objects.get(subject_id=trade.id)
    assert (review.verdict, review.reason, review.officer_username) == (
        "approve",
        "Art. 9(2)(a) explicit consent records checked",
        officer.user.username,
    )
    assert review.compliance_check_id == trade.decision_id
    assert trade.status == Trade.Status.APPROVED
    assert trade.events.last().reason == "Art. 9(2)(a) explicit consent records checked"


def test_only_a_trade_in_review_can_be_reviewed(officer, buyer_eu, eu_personal):
    trade = TradeFactory(dataset=eu_personal, buyer=buyer_eu.organisation, status=Trade.Status.CHECKING)

    with pytest.raises(TradeTransitionNotAllowedError):
        trade_review(trade_id=trade.id, officer=officer.user, approve=True, reason="x")
    assert not Review.objects.exists()


def test_transition_writes_one_event_with_actor_and_reason(buyer_eu, eu_personal):
    trade = TradeFactory(dataset=eu_personal, buyer=buyer_eu.organisation, status=Trade.Status.IN_REVIEW)

    trade_transition(trade_id=trade.id, to=Trade.Status.CANCELLED, actor=buyer_eu.user, reason="changed my mind")

    event = trade.events.get()
    assert (event.from_status, event.to_status, event.actor_id, event.reason) == (
        "in_review",
        "cancelled",
        buyer_eu.user.id,
        "changed my mind",
    )
