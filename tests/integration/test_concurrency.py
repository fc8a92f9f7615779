"""Races on PostgreSQL with real threads and connections: row locks make settlement and the
check happen once however many workers get the same message."""

import threading
from collections.abc import Callable

import pytest
from django.db import connection

from compliance.models import ComplianceCheck
from marketplace.models import Settlement, Trade
from marketplace.services.settlement import trade_settle
from marketplace.services.trade_compliance import trade_check_compliance
from tests.factories import TradeFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def race(fns: list[Callable[[], object]]) -> list[BaseException]:
    """Run each fn in its own thread, all released at the same instant; return what they raised."""
    barrier = threading.Barrier(len(fns))
    errors: list[BaseException] = []

    def run(fn: Callable[[], object]) -> None:
        try:
            barrier.wait()
            fn()
        except BaseException as exc:  # collected and asserted on by the test
            errors.append(exc)
        finally:
            connection.close()  # this thread's own connection; persistent ones would outlive the test

    threads = [threading.Thread(target=run, args=(fn,)) for fn in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return errors


def test_twenty_workers_settling_one_trade_pay_once(buyer_eu, eu_personal):
    trade = TradeFactory(dataset=eu_personal, buyer=buyer_eu.organisation, status=Trade.Status.APPROVED)

    errors = race([lambda: trade_settle(trade_id=trade.id)] * 20)

    assert errors == []
    assert Settlement.objects.filter(trade=trade).count() == 1
    assert list(trade.events.values_list("to_status", flat=True)) == ["settled"]


def test_twenty_concurrent_checks_decide_once(rulepacks, buyer_eu, eu_personal):
    trade = TradeFactory(dataset=eu_personal, buyer=buyer_eu.organisation)

    errors = race([lambda: trade_check_compliance(trade_id=trade.id)] * 20)

    assert errors == []
    assert ComplianceCheck.objects.filter(subject_id=trade.id).count() == 1
    assert list(trade.events.values_list("to_status", flat=True)) == ["approved"]


def test_cancel_racing_settlement_ends_in_exactly_one_of_them(buyer_eu, eu_personal):
    from marketplace.errors import TradeTransitionNotAllowedError
    from marketplace.services.trades import trade_cancel

    for _ in range(5):
        trade = TradeFactory(dataset=eu_personal, buyer=buyer_eu.organisation, status=Trade.Status.APPROVED)

        errors = race([lambda t=trade: trade_settle(trade_id=t.id), lambda t=trade: trade_cancel(trade_id=t.id, actor=buyer_eu.user)])

        trade.refresh_from_db()
        assert all(isinstance(e, TradeTransitionNotAllowedError) for e in errors)  # the loser is told, not crashed
        assert trade.status in ("settled", "cancelled")
        assert Settlement.objects.filter(trade=trade).exists() == (trade.status == "settled")
        assert trade.events.count() == 1


def test_concurrent_checks_cannot_both_slip_under_a_cumulative_threshold(rulepacks, provider_cn):
    """China exempts fewer than 100,000 people a year. Ten buyers each buy 60,000 at the same
    instant: only one may be let through without a standard contract; without the exporter lock
    every check would read a tally of 0 and all ten would be approved."""
    from marketplace.services.trades import trade_create
    from tests.factories import DatasetFactory, MembershipFactory, OrganisationFactory

    panel = DatasetFactory(provider=provider_cn.organisation, subject_jurisdictions=["CN"], subjects=60_000, currency="USD")
    buyers = [MembershipFactory(organisation=OrganisationFactory(jurisdiction="SG"), role="buyer") for _ in range(10)]
    trades = [trade_create(membership=b, dataset_id=panel.id) for b in buyers]

    errors = race([lambda t=t: trade_check_compliance(trade_id=t.id) for t in trades])

    assert errors == []
    statuses = sorted(Trade.objects.filter(pk__in=[t.id for t in trades]).values_list("status", flat=True))
    assert statuses == ["approved"] + ["needs_documents"] * 9
