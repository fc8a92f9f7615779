"""A trade's transfer facts come from the dataset, the organisations and earlier settled trades."""

from datetime import UTC, date, datetime

import pytest

from marketplace.models import Trade
from marketplace.services.trade_facts import trade_transfer_facts
from tests.factories import DatasetFactory, OrganisationFactory, TradeFactory

pytestmark = pytest.mark.django_db


def settled_on(day: date, **kwargs) -> Trade:
    at = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    return TradeFactory(status=Trade.Status.SETTLED, settled_at=at, status_changed_at=at, **kwargs)


def test_facts_describe_dataset_exporter_and_buyer_organisation():
    provider = OrganisationFactory(jurisdiction="CN", exporter_flags=["cn_ciio"])
    buyer = OrganisationFactory(jurisdiction="SG", headquarters="US", owner_jurisdictions=["CN"], certifications=["apec_cbpr"])
    dataset = DatasetFactory(provider=provider, subject_jurisdictions=["CN"], classification="sensitive_personal", categories=["health"], subjects=10)
    trade = TradeFactory(dataset=dataset, buyer=buyer, destination="HK", mechanisms=[{"code": "cn_standard_contract"}])

    facts = trade_transfer_facts(trade=trade, trade_date=date(2026, 11, 26))

    assert facts["data"] == {"subject_jurisdictions": ["CN"], "storage_jurisdiction": "CN", "classification": "sensitive_personal",
                             "categories": ["health"], "subjects": 10, "de_identified": False, "flags": []}
    assert facts["exporter"] == {"jurisdiction": "CN", "flags": ["cn_ciio"]}
    assert facts["buyer"] == {"jurisdiction": "HK", "headquarters": "US", "owner_jurisdictions": ["CN"], "kind": "company",
                              "certifications": ["apec_cbpr"]}
    assert facts["mechanisms"] == [{"code": "cn_standard_contract"}]
    assert facts["trade_date"] == "2026-11-26"


def test_prior_exports_are_summed_per_window_bucket_and_buyer():
    provider = OrganisationFactory(jurisdiction="CN")
    buyer, other = OrganisationFactory(), OrganisationFactory()
    personal = DatasetFactory(provider=provider, subject_jurisdictions=["CN"], subjects=40000, categories=["contact"])
    settled_on(date(2026, 3, 1), dataset=personal, buyer=other)
    settled_on(date(2026, 5, 1), dataset=personal, buyer=other)
    settled_on(date(2026, 6, 1), dataset=personal, buyer=buyer)
    settled_on(date(2025, 12, 30), dataset=personal, buyer=buyer)      # last year: US window only
    settled_on(date(2025, 6, 1), dataset=personal, buyer=buyer)        # outside every window
    TradeFactory(dataset=personal, buyer=other, status=Trade.Status.APPROVED)  # not settled: not counted
    trade = TradeFactory(dataset=personal, buyer=buyer)

    prior = trade_transfer_facts(trade=trade, trade_date=date(2026, 11, 26))["prior_exports"]

    summary = sorted((p["date"], p["subjects"], p["same_buyer"]) for p in prior)
    assert summary == [("2025-12-30", 40000, True), ("2026-05-01", 80000, False), ("2026-06-01", 40000, True)]
