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


@pytest.fixture(autouse=True)
def _no_enqueue(no_trade_work):
    """These tests drive the services from their own threads to race them on row locks; the
    session's worker (started by earlier tests) must not act on their trades meanwhile."""


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

        errors = race(
            [
                lambda t=trade: trade_settle(trade_id=t.id),
                lambda t=trade: trade_cancel(trade_id=t.id, actor=buyer_eu.user),
            ]
        )

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

    panel = DatasetFactory(
        provider=provider_cn.organisation, subject_jurisdictions=["CN"], subjects=60_000, currency="USD"
    )
    buyers = [MembershipFactory(organisation=OrganisationFactory(jurisdiction="SG"), role="buyer") for _ in range(10)]
    trades = [trade_create(membership=b, dataset_id=panel.id) for b in buyers]

    errors = race([lambda t=t: trade_check_compliance(trade_id=t.id) for t in trades])

    assert errors == []
    statuses = sorted(Trade.objects.filter(pk__in=[t.id for t in trades]).values_list("status", flat=True))
    assert statuses == ["approved"] + ["needs_documents"] * 9


def test_fifty_concurrent_purchases_never_overdraw_one_wallet(provider_eu):
    """A wallet funded for exactly 10 purchases, 50 buyers of the organisation at the same instant:
    10 succeed, 40 get insufficient_funds, the balance ends at zero and the ledger balances."""
    from decimal import Decimal

    from config.errors import ApplicationError
    from marketplace.models import LedgerEntry, Wallet
    from marketplace.services.trades import trade_create
    from tests.factories import DatasetFactory, MembershipFactory, OrganisationFactory, fund

    org = OrganisationFactory(jurisdiction="DE")
    fund(org, "1000.00", ("EUR",))
    members = [MembershipFactory(organisation=org, role="buyer") for _ in range(50)]
    dataset = DatasetFactory(provider=provider_eu.organisation, price="100.00", currency="EUR")

    errors = race([lambda m=m: trade_create(membership=m, dataset_id=dataset.id) for m in members])

    assert len(errors) == 40 and all(isinstance(e, ApplicationError) and e.code == "insufficient_funds" for e in errors)
    assert Trade.objects.filter(dataset=dataset).count() == 10
    wallet = Wallet.objects.get(organisation=org, currency="EUR")
    assert (wallet.available, wallet.held) == (Decimal("0.00"), Decimal("1000.00"))
    assert sum(LedgerEntry.objects.values_list("amount", flat=True)) == 0


def test_x_buys_from_y_while_y_buys_from_x_without_deadlock():
    """Two organisations that sell to each other settle concurrently: wallet rows are always
    updated in the same order, so neither settlement deadlocks and both pay once."""
    from marketplace.models import LedgerTransaction
    from marketplace.services.trade_transitions import trade_transition
    from marketplace.services.trades import trade_create
    from tests.factories import DatasetFactory, MembershipFactory, OrganisationFactory

    x, y = OrganisationFactory(jurisdiction="DE"), OrganisationFactory(jurisdiction="FR")
    trades = []
    for seller, buyer in ((x, y), (y, x)):
        dataset = DatasetFactory(provider=seller, price="10.00")
        for _ in range(5):
            trades.append(
                trade_create(membership=MembershipFactory(organisation=buyer, role="buyer"), dataset_id=dataset.id)
            )
    for t in trades:
        trade_transition(trade_id=t.id, to=Trade.Status.APPROVED, actor_label="system:test")

    errors = race([lambda t=t: trade_settle(trade_id=t.id) for t in trades])

    assert errors == []
    assert Trade.objects.filter(pk__in=[t.id for t in trades], status="settled").count() == 10
    assert LedgerTransaction.objects.filter(kind="settle").count() == 10


def _paid_grant(buyer, dataset):
    """A trade bought with escrow, approved and settled through the services; its grant."""
    from marketplace.models import AccessGrant
    from marketplace.services.trade_transitions import trade_transition
    from marketplace.services.trades import trade_create

    trade = trade_create(membership=buyer, dataset_id=dataset.id)
    trade_transition(trade_id=trade.id, to=Trade.Status.APPROVED, actor_label="system:test")
    trade_settle(trade_id=trade.id)
    return AccessGrant.objects.get(trade=trade)


def test_officers_deciding_one_revocation_request_at_once_refund_once(buyer_eu, provider_eu, officer, eu_personal):
    from marketplace.errors import RevocationRequestDecidedError
    from marketplace.models import GrantRevocationRequest, LedgerTransaction, Wallet
    from marketplace.services.grant_revocations import grant_revocation_decide, grant_revocation_request

    grant = _paid_grant(buyer_eu, eu_personal)
    request = grant_revocation_request(grant_id=grant.id, membership=provider_eu, reason="breach")
    buyer_before = Wallet.objects.get(organisation=buyer_eu.organisation, currency="EUR").available

    errors = race(
        [
            lambda refund=refund: grant_revocation_decide(
                request_id=request.id, officer=officer, revoke=True, refund=refund, reason="r"
            )
            for refund in ["full", "none", "full", "none", "full", "none"]
        ]
    )

    assert len(errors) == 5 and all(isinstance(e, RevocationRequestDecidedError) for e in errors), errors
    decided = GrantRevocationRequest.objects.get(pk=request.id)
    refunds = LedgerTransaction.objects.filter(trade_id=grant.trade_id, kind="refund").count()
    assert refunds == (1 if decided.refund == "full" else 0)
    buyer_after = Wallet.objects.get(organisation=buyer_eu.organisation, currency="EUR").available
    assert buyer_after - buyer_before == (eu_personal.price if decided.refund == "full" else 0)
    assert not Wallet.objects.filter(available__lt=0).exists()


def test_concurrent_provider_requests_leave_one_pending(buyer_eu, provider_eu, eu_personal):
    from marketplace.errors import RevocationRequestPendingError
    from marketplace.models import GrantRevocationRequest
    from marketplace.services.grant_revocations import grant_revocation_request

    grant = _paid_grant(buyer_eu, eu_personal)

    errors = race([lambda: grant_revocation_request(grant_id=grant.id, membership=provider_eu, reason="breach")] * 10)

    assert len(errors) == 9 and all(isinstance(e, RevocationRequestPendingError) for e in errors), errors
    assert GrantRevocationRequest.objects.filter(grant=grant, status="pending").count() == 1


def test_a_suspension_racing_downloads_stops_every_download_that_starts_after_it(
    buyer_eu, provider_eu, eu_personal, settings, tmp_path
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from marketplace.errors import GrantSuspendedError
    from marketplace.models import AccessGrant, GrantDownload
    from marketplace.services.dataset_files import dataset_file_upload
    from marketplace.services.downloads import grant_download_open
    from marketplace.services.grant_revocations import grant_suspend

    settings.MEDIA_ROOT = tmp_path / "media"
    dataset_file_upload(
        dataset_id=eu_personal.id, membership=provider_eu, upload=SimpleUploadedFile("a.csv", b"id\n1\n")
    )
    grant = _paid_grant(buyer_eu, eu_personal)

    errors = race([lambda: grant_suspend(grant_id=grant.id, reason="would now be denied"),
                   *[lambda: grant_download_open(grant_id=grant.id, membership=buyer_eu)] * 8])

    assert all(isinstance(e, GrantSuspendedError) for e in errors), errors
    suspended_at = AccessGrant.objects.get(pk=grant.id).suspended_at
    assert suspended_at is not None
    assert not GrantDownload.objects.filter(grant=grant, at__gt=suspended_at).exists()
    assert GrantDownload.objects.filter(grant=grant).count() == 8 - len(errors)
