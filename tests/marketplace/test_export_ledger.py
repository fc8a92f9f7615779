"""Cumulative thresholds in real trades: a check reserves the volume, settlement commits it,
rejection and cancellation release it; the next check of the same exporter sees the sums."""

from datetime import date

import pytest

from compliance.models import ExportRecord
from marketplace.models import Trade
from marketplace.services.settlement import trade_settle
from marketplace.services.trade_compliance import trade_check_compliance
from marketplace.services.trades import trade_cancel, trade_create
from tests.factories import DatasetFactory, MembershipFactory, OrganisationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def panel(provider_cn):
    """60,000 people per purchase: one purchase is exempt, two cross 100,000 together."""
    return DatasetFactory(
        provider=provider_cn.organisation, subject_jurisdictions=["CN"], subjects=60_000, currency="USD"
    )


@pytest.fixture
def buyers(db):
    return [MembershipFactory(organisation=OrganisationFactory(jurisdiction="SG"), role="buyer") for _ in range(3)]


def buy_and_check(buyer, dataset) -> Trade:
    trade = trade_check_compliance(trade_id=trade_create(membership=buyer, dataset_id=dataset.id).id)
    assert trade is not None
    return trade


def test_second_purchase_crosses_the_threshold_the_first_reserved(rulepacks, panel, buyers):
    first = buy_and_check(buyers[0], panel)
    second = buy_and_check(buyers[1], panel)

    assert first.status == Trade.Status.APPROVED
    assert second.status == Trade.Status.NEEDS_DOCUMENTS
    finding = next(f for f in second.decision.decision["findings"] if f["rule"] == "CN-PI-SC")
    assert "60,000 before + 60,000 in this trade = 120,000 ≥ 100,000" in finding["explanation"]
    assert ExportRecord.objects.get(subject_id=first.id).state == "reserved"


def test_settlement_commits_and_cancellation_releases(rulepacks, panel, buyers, buyer_us):
    first = buy_and_check(buyers[0], panel)
    trade_settle(trade_id=first.id)
    second = buy_and_check(buyers[1], panel)
    assert ExportRecord.objects.get(subject_id=first.id).state == "committed"
    assert ExportRecord.objects.get(subject_id=first.id).date == date.today()

    trade_cancel(trade_id=second.id, actor=buyers[1].user)
    assert ExportRecord.objects.get(subject_id=second.id).state == "released"

    third = buy_and_check(buyers[2], panel)
    assert third.status == Trade.Status.NEEDS_DOCUMENTS  # 60,000 committed + 60,000
    trade_cancel(trade_id=third.id, actor=buyers[2].user)


def test_rejection_releases_the_reservation(rulepacks, panel, buyers, officer):
    from marketplace.services.trades import trade_review

    panel.classification, panel.categories = "sensitive_personal", ["health"]
    panel.save()
    trade = buy_and_check(buyers[0], panel)  # sensitive: CN-SPI-SC waits for a standard contract
    assert trade.status == Trade.Status.NEEDS_DOCUMENTS
    assert ExportRecord.objects.get(subject_id=trade.id).state == "reserved"

    Trade.objects.filter(pk=trade.id).update(status=Trade.Status.IN_REVIEW)  # as if an officer had pulled it in
    trade_review(trade_id=trade.id, officer=officer.user, approve=False, reason="no separate consent on file")

    assert ExportRecord.objects.get(subject_id=trade.id).state == "released"


def test_a_denied_trade_reserves_nothing(rulepacks, provider_eu, buyer_ir, eu_public):
    trade = buy_and_check(buyer_ir, eu_public)

    assert trade.status == Trade.Status.REJECTED
    assert not ExportRecord.objects.filter(subject_id=trade.id, state="reserved").exists()


def test_a_recheck_replaces_its_own_reservation_instead_of_counting_twice(rulepacks, panel, buyers):
    trade = buy_and_check(buyers[0], panel)
    Trade.objects.filter(pk=trade.id).update(status=Trade.Status.CHECKING)

    again = trade_check_compliance(trade_id=trade.id)

    assert again.status == Trade.Status.APPROVED  # 60,000, not 120,000
    assert ExportRecord.objects.filter(subject_id=trade.id).count() == 1
